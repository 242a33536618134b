package boxes

import (
	"reflect"
	"testing"
	"time"
)

func TestLoadNotify(t *testing.T) {
	c, err := Load("testdata/good/notify.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Webhook{
		{URLEnv: "BOXSWAP_CHAT_WEBHOOK", Events: []NotifyKind{"failure", "gate"}, Timeout: 2 * time.Second, Line: 36},
		{URL: "http://127.0.0.1:8080/boxswap", Events: []NotifyKind{"start", "end", "failure", "gate"}, Timeout: 5 * time.Second, Line: 39},
	}
	if !reflect.DeepEqual(c.Notify, want) {
		t.Errorf("notify =\n%+v\nwant\n%+v", c.Notify, want)
	}
	if !c.Notify[0].Wants("gate") || c.Notify[0].Wants("start") {
		t.Errorf("Wants: %+v", c.Notify[0])
	}
	// None by default.
	c, err = Load("testdata/good/minimal.yaml")
	if err != nil || c.Notify != nil {
		t.Fatalf("minimal: notify %+v, err %v", c.Notify, err)
	}
}

func TestCheckWebhookURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://example.org/x", true},
		{"http://127.0.0.1:9/hook?a=b", true},
		{"http://[::1]:80/", true},
		{"ftp://example.org/", false},
		{"file:///etc/passwd", false},
		{"https:///nohost", false},
		{"example.org/x", false},
		{"http://exa mple.org/", false},
		{"http://example.org/\nx", false},
		{"http://%zz", false},
	} {
		msg, _ := checkWebhookURL(tc.url)
		if (msg == "") != tc.ok {
			t.Errorf("%q: %q, want ok=%v", tc.url, msg, tc.ok)
		}
	}
}
