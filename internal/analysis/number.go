package analysis

import (
	"encoding/json"
	"math"
	"strconv"
)

// Number is a float64 that survives JSON when it is not finite: a P99 in
// Prometheus's +Inf bucket is +Inf, and the state object must keep it.
// Like Prometheus's API, it writes "+Inf", "-Inf" and "NaN" as strings.
type Number float64

// MarshalJSON writes finite numbers as numbers, the rest as strings.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	switch {
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (n *Number) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		f, err := strconv.ParseFloat(s, 64)
		*n = Number(f)
		return err
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = Number(f)
	return err
}

func numPtr(f *float64) *Number {
	if f == nil {
		return nil
	}
	n := Number(*f)
	return &n
}
