package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"boxswap/boxes"
)

// Webhooks posts to the webhooks of one boxes.yaml.
type Webhooks struct {
	Hooks []boxes.Webhook
	// Client sends the posts; nil means a client of its own that does not
	// follow redirects (a notice goes where boxes.yaml says, or fails).
	Client *http.Client
}

// New returns the Webhooks of hooks; Send on none does nothing.
func New(hooks []boxes.Webhook) *Webhooks {
	return &Webhooks{Hooks: hooks}
}

// Send posts body, as JSON, to each webhook that wants kind. It returns
// when every post has ended or timed out, with their errors joined.
func (w *Webhooks) Send(ctx context.Context, kind boxes.NotifyKind, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("notify: encoding the %s notice: %w", kind, err)
	}
	client := w.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	errs := make([]error, len(w.Hooks))
	var wg sync.WaitGroup
	for i, h := range w.Hooks {
		if !h.Wants(kind) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = post(ctx, client, h, kind, data)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func post(ctx context.Context, client *http.Client, h boxes.Webhook, kind boxes.NotifyKind, data []byte) error {
	name := h.Name()
	target, err := h.Target()
	if err != nil {
		return err
	}
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "boxswap")
	req.Header.Set("X-Boxswap-Event", string(kind))
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, token included
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("webhook %s: no answer within %s", name, h.Timeout)
		}
		return fmt.Errorf("webhook %s: %w", name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook %s: answered %s", name, resp.Status)
	}
	return nil
}

// Redact returns u as messages show a webhook URL: scheme and host only.
func Redact(u string) string { return boxes.RedactURL(u) }
