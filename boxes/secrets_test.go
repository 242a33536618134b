package boxes

import "testing"

// TestURLSecretNames: a parameter is a secret when a part of its name is a
// secret's word, not when the word hides inside another (author, keyword,
// signal, design, skip_auth's auth is a part: it is).
func TestURLSecretNames(t *testing.T) {
	for _, tc := range []struct {
		url    string
		secret bool
	}{
		{"https://h/x?token=1", true},
		{"https://h/x?api_key=1", true},
		{"https://h/x?apiKey=1", true},
		{"https://h/x?X-Amz-Signature=1", true},
		{"https://h/x?sig=1", true},
		{"https://h/x#access_token=1", true},
		{"https://h/x?PASSWORD=1", true},
		{"https://h/x?session_id=1", true},
		{"https://h/health?skip_auth=1", true},
		{"https://u:p@h/x", true},
		{"https://h/x?author=me", false},
		{"https://h/x?keyword=a", false},
		{"https://h/x?signal=1", false},
		{"https://h/x?design=1", false},
		{"https://h/x?monkey=1", false},
		{"https://h/x?passage=1", false},
		{"https://h/x?page=2", false},
	} {
		if got := urlSecret(tc.url) != ""; got != tc.secret {
			t.Errorf("%s: secret %v, want %v (%q)", tc.url, got, tc.secret, urlSecret(tc.url))
		}
	}
}
