package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
)

// Every JSON record boxswap writes (meta, attempts, summaries, approvals,
// history; facts are plain strings) ends with a checksum member,
// "crc":"xxxxxxxx" (CRC-32C of the record without it), so that one byte
// changed anywhere in it, a stored boxes.yaml or command included, is
// damage that Verify reports (ErrCorrupt) before any verb reads or writes
// the state. A boxswap that does not know the member ignores it; a record
// written before it existed has none and is read as it is.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealTail is the length of `"crc":"xxxxxxxx"}`.
const sealTail = 17

// Seal is v's JSON with its checksum member.
func Seal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return b, nil // not an object: nothing to seal into
	}
	sum := crc32.Checksum(b, castagnoli)
	out := append([]byte(nil), b[:len(b)-1]...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	return fmt.Appendf(out, `"crc":"%08x"}`, sum), nil
}

// CheckSeal reports, wrapping nothing (the caller names the record), how a
// sealed record differs from what was written; nil for an intact record
// or one written before records were sealed. rec must be valid JSON.
func CheckSeal(rec []byte) error {
	n := len(rec)
	// The shape of the tail, whatever bytes a damage changed in it: a
	// record without a checksum never ends with a member whose name has
	// three letters and whose value has eight.
	if n < sealTail+1 || rec[n-sealTail] != '"' || !bytes.Equal(rec[n-13:n-10], []byte(`":"`)) || !bytes.Equal(rec[n-2:], []byte(`"}`)) {
		return nil
	}
	if !bytes.Equal(rec[n-sealTail:n-13], []byte(`"crc`)) {
		return fmt.Errorf("its checksum member is named %q", rec[n-sealTail+1:n-13])
	}
	want, err := strconv.ParseUint(string(rec[n-10:n-2]), 16, 32)
	if err != nil {
		return fmt.Errorf("its checksum %q is not hexadecimal", rec[n-10:n-2])
	}
	body := append([]byte(nil), rec[:n-sealTail]...)
	if k := len(body) - 1; k > 0 && body[k] == ',' {
		body = body[:k]
	}
	body = append(body, '}')
	if got := crc32.Checksum(body, castagnoli); uint32(want) != got {
		return fmt.Errorf("checksum %08x, written %08x: changed since boxswap wrote it", got, want)
	}
	return nil
}
