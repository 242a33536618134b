package boxes

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// byteUnits are the units ParseByteSize reads, case-insensitively. Single
// letters (G, M) are refused: df means GiB by G, disk vendors mean GB.
var byteUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"pb":  1000 * 1000 * 1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"pib": 1 << 50,
}

// ParseByteSize reads a size written as a number of bytes ("1024") or a
// number and a unit ("10GiB", "500MB", "1.5 GiB"). Decimal units (kB, MB,
// GB, TB, PB) are powers of 1000, binary ones (KiB … PiB) powers of 1024.
// The result must be a whole number of bytes and fit in an int64.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if !validDecimal(num) {
		return 0, fmt.Errorf("size %q does not start with a number", s)
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q has unknown unit %q; units are B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB and PiB", s, t[i:])
	}
	// big.Rat keeps "0.5KiB" exact; validDecimal bounds the digits so this
	// stays cheap on hostile input.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("size %q does not start with a number", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n.Int64()), nil
}

// validDecimal accepts 12, 12.5 and nothing else (no sign, no exponent),
// at most 30 characters long.
func validDecimal(s string) bool {
	if s == "" || len(s) > 30 {
		return false
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || hasDot && frac == "" {
		return false
	}
	return !strings.Contains(frac, ".")
}

// String writes b with the largest unit that divides it exactly, binary
// before decimal at the same magnitude, so ParseByteSize(b.String()) == b.
func (b ByteSize) String() string {
	if b <= 0 {
		return fmt.Sprintf("%dB", int64(b))
	}
	type unit struct {
		name string
		size int64
	}
	for _, u := range []unit{
		{"PiB", 1 << 50}, {"PB", 1e15},
		{"TiB", 1 << 40}, {"TB", 1e12},
		{"GiB", 1 << 30}, {"GB", 1e9},
		{"MiB", 1 << 20}, {"MB", 1e6},
		{"KiB", 1 << 10}, {"kB", 1e3},
	} {
		if int64(b)%u.size == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(b))
}

// MarshalText writes b as String does, so a Config can be printed as YAML
// or JSON with readable sizes.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads what ParseByteSize reads.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// HumanBytes writes a byte count for people, in binary units with one
// decimal ("1.5 GiB"); unlike String it rounds.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
