// Package notify posts boxswap's notices to the webhooks of boxes.yaml
// (its notify section): a JSON object by HTTP POST, at a transition's
// start, end, failure and gate.
//
// # Caveats
//
// A notification must never stop an upgrade: Send bounds each post by its
// webhook's timeout, posts to all webhooks at once, and returns the
// failures for the caller to print as warnings, never to act upon. Errors
// name the webhook without its query string, which often holds a token.
package notify
