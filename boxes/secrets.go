package boxes

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"boxswap/internal/safefile"
)

// secretParam matches the names of URL parameters that carry a secret:
// ?token=, ?api_key=, ?sig=, ?X-Amz-Signature=, ?password=...
// A part of the name must be one of these words (parts are split at _ . -
// and between a lower-case letter and a capital): ?author=, ?keyword= or
// ?signal= are not secrets.
var secretParam = regexp.MustCompile(`(?i)^(.*[_.-])?(access_?token|token|api_?key|key|secret|pass|password|passwd|pwd|sig|signature|auth|authorization|credentials?|session(_?id)?)([_.-].*)?$`)

// envName is a variable name url_env accepts.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// urlSecret says what secret a URL holds in plain sight ("" if none): user
// info, or a query or fragment parameter named like a secret. boxes.yaml
// is recorded with every attempt and printed by log --json; such a URL is
// given through the environment or a file instead.
func urlSecret(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	if u.User != nil {
		return "holds a user or password (user@ or user:password@)"
	}
	for _, raw := range []string{u.RawQuery, u.Fragment} {
		q, _ := url.ParseQuery(raw)
		for name := range q {
			if secretParam.MatchString(camelParts(name)) {
				return fmt.Sprintf("holds a secret parameter (%s=)", clip(name))
			}
		}
	}
	return ""
}

// RedactURL is a URL as boxswap prints and records it: scheme and host
// only, for every webhook URL is a secret.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "(a URL)"
	}
	return u.Scheme + "://" + u.Host
}

// Name is how messages name the webhook: scheme and host of an url given
// in boxes.yaml, or where the URL is read from.
func (w Webhook) Name() string {
	switch {
	case w.URLEnv != "":
		return "$" + w.URLEnv
	case w.URLFile != "":
		return w.URLFile
	}
	return RedactURL(w.URL)
}

// Target is the webhook's URL: url, or the variable url_env, or the first
// line of url_file, checked as url is. Errors never quote it.
func (w Webhook) Target() (string, error) {
	u := w.URL
	switch {
	case w.URLEnv != "":
		if u = os.Getenv(w.URLEnv); u == "" {
			return "", fmt.Errorf("webhook %s: the variable is not set", w.Name())
		}
	case w.URLFile != "":
		data, err := safefile.ReadInput(w.URLFile, SecretInput)
		if err != nil {
			var ie *safefile.InputError
			if errors.As(err, &ie) {
				return "", fmt.Errorf("webhook url_file: %w", err)
			}
			return "", fmt.Errorf("webhook url_file %s: %w", w.URLFile, err)
		}
		u, _, _ = strings.Cut(string(data), "\n")
		u = strings.TrimSpace(u)
	}
	if msg, _ := checkWebhookURL(u); msg != "" {
		return "", fmt.Errorf("webhook %s: the URL it gives %s", w.Name(), msg)
	}
	return u, nil
}

// redactSource is boxes.yaml's text as it is recorded with an attempt:
// each webhook url written in it cut to its scheme and host.
func redactSource(data string, hooks []Webhook) string {
	for _, w := range hooks {
		if w.URL != "" {
			data = strings.ReplaceAll(data, w.URL, RedactURL(w.URL))
		}
	}
	return data
}

// camelParts puts a "_" between a lower-case letter and the capital after
// it (X-Amz-Signature stays, apiKey becomes api_Key), so secretParam sees
// the words of a camel-case name.
func camelParts(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			if p := name[i-1]; p >= 'a' && p <= 'z' {
				b.WriteByte('_')
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}
