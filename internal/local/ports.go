package local

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"syscall"

	"github.com/msctl/msctl/internal/errkind"
)

// DefaultPortBase is the first port of the local runtime. It and every
// port above it that the layout uses stay below Linux's ephemeral range
// (32768 and up), where an outgoing connection could hold one.
const DefaultPortBase = 17000

// Ports are one process's three listeners.
type Ports struct {
	HTTP  int `json:"http"`
	GRPC  int `json:"grpc"`
	Admin int `json:"admin"`
}

// layout gives every listener a fixed port from the base, so the ports are
// the same on every run: the gateway's edge, the metrics API and the
// control API first, then a block of ten per service in the project file's
// order: its mesh listener and two slots of process ports (the stable's and
// a canary's; a promotion swaps them).
type layout int

func (b layout) edge() int    { return int(b) }
func (b layout) metrics() int { return int(b) + 1 }
func (b layout) control() int { return int(b) + 2 }

func (b layout) block(index int) int { return int(b) + 10*(index+1) }
func (b layout) mesh(index int) int  { return b.block(index) }
func (b layout) slot(index, slot int) Ports {
	p := b.block(index) + 1 + 3*slot
	return Ports{HTTP: p, GRPC: p + 1, Admin: p + 2}
}

// CheckPortBase rejects a base whose layout for n services leaves the
// valid port range.
func CheckPortBase(base, n int) error {
	top := layout(base).block(n)
	if base < 1024 || top > 65535 {
		return errkind.BadInputf("port base %d: the local runtime needs ports %d-%d, within 1024-65535", base, base, top)
	}
	return nil
}

// portUse names what a port is for, for the message when it is taken.
type portUse struct {
	port int
	what string
}

// checkPorts fails on the first port that cannot be bound on loopback,
// naming it and its use, before anything starts.
func checkPorts(uses []portUse) error {
	slices.SortFunc(uses, func(a, b portUse) int { return a.port - b.port })
	for _, u := range uses {
		ln, err := net.Listen("tcp", addr(u.port))
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return errkind.BadInputf("port %d (%s) is taken; free it or choose another base with --port-base", u.port, u.what)
			}
			return fmt.Errorf("port %d (%s): %w", u.port, u.what, err)
		}
		ln.Close()
	}
	return nil
}

// addr is a loopback address; the local runtime never listens elsewhere.
func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
