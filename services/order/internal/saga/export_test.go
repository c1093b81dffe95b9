package saga

import (
	"time"

	"github.com/msctl/msctl/services/order/internal/domain"
)

// CrashAfter makes s stop, as if killed, right after step's remote call
// answered and before its outcome is stored.
func CrashAfter(s *Saga, step domain.Step) {
	s.crashAfter = func(got domain.Step) bool { return got == step }
}

// ErrCrashed is what a simulated crash returns.
var ErrCrashed = errCrashed

// SetClock makes s read the time from now.
func SetClock(s *Saga, now func() time.Time) { s.now = now }
