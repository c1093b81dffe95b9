package inventoryv1

import (
	"strings"
	"testing"
)

// TestValidOrderID: an order id is an idempotency key, so ids that differ
// only by invisible characters are refused rather than kept apart.
func TestValidOrderID(t *testing.T) {
	for _, tc := range []struct {
		id, want string
	}{
		{"0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", ""},
		{"order-1", ""},
		{"", "is required"},
		{" ", "surrounding spaces"},
		{"order-1 ", "surrounding spaces"},
		{"order\x00-1", "control characters"},
		{strings.Repeat("x", MaxOrderIDLen+1), "at most"},
	} {
		err := ValidOrderID(tc.id)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ValidOrderID(%q) = %v, want %q", tc.id, err, tc.want)
		}
	}
}
