package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/boxes"
)

type received struct {
	mu     sync.Mutex
	bodies []map[string]any
	kinds  []string
}

func server(t *testing.T, rec *received, status int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with %q", r.Method, r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %q: %v", b, err)
		}
		rec.mu.Lock()
		rec.bodies = append(rec.bodies, m)
		rec.kinds = append(rec.kinds, r.Header.Get("X-Boxswap-Event"))
		rec.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestSendPostsToTheWebhooksThatWantIt(t *testing.T) {
	var all, gates received
	a := server(t, &all, http.StatusNoContent)
	g := server(t, &gates, http.StatusOK)
	w := New([]boxes.Webhook{
		{URL: a.URL + "/hook?token=x", Events: boxes.NotifyEvents, Timeout: 5 * time.Second},
		{URL: g.URL, Events: []boxes.NotifyKind{"gate"}, Timeout: 5 * time.Second},
	})
	for _, kind := range []boxes.NotifyKind{"start", "gate", "end"} {
		if err := w.Send(context.Background(), kind, map[string]string{"kind": string(kind), "event": "redirect"}); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	if got := strings.Join(all.kinds, " "); got != "start gate end" {
		t.Errorf("all: %q", got)
	}
	if got := strings.Join(gates.kinds, " "); got != "gate" || gates.bodies[0]["event"] != "redirect" {
		t.Errorf("gates: %q %v", got, gates.bodies)
	}
}

func TestSendReportsFailuresWithoutTheToken(t *testing.T) {
	var rec received
	bad := server(t, &rec, http.StatusInternalServerError)
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(func() { close(block); slow.Close() })
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close() // nothing listens there any more

	w := New([]boxes.Webhook{
		{URL: bad.URL + "/?token=secret", Events: []boxes.NotifyKind{"failure"}, Timeout: 5 * time.Second},
		{URL: slow.URL + "/slow?token=secret", Events: []boxes.NotifyKind{"failure"}, Timeout: 50 * time.Millisecond},
		{URL: refusedURL + "/gone?token=secret", Events: []boxes.NotifyKind{"failure"}, Timeout: 5 * time.Second},
	})
	err := w.Send(context.Background(), "failure", map[string]string{"kind": "failure"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"webhook " + bad.URL + ": answered 500 Internal Server Error",
		"webhook " + slow.URL + ": no answer within 50ms",
		"webhook " + refusedURL + ": ",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "secret") || strings.Contains(msg, "slow") || strings.Contains(msg, "gone") {
		t.Errorf("the token leaked into the error:\n%s", msg)
	}
	if len(rec.bodies) != 1 {
		t.Errorf("the failing webhook got %d posts", len(rec.bodies))
	}
}

func TestSendToNoneDoesNothing(t *testing.T) {
	if err := New(nil).Send(context.Background(), "start", struct{}{}); err != nil {
		t.Fatal(err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@example.org/a/b?token=1#f":       "https://example.org",
		"http://127.0.0.1:8080/":                      "http://127.0.0.1:8080",
		"https://hooks.slack.com/services/T0/B0/XXXX": "https://hooks.slack.com",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
