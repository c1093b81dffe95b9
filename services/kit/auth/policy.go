package auth

import (
	"fmt"
	"slices"

	"google.golang.org/grpc"
)

// Permission names one thing a caller may do, such as "users.read".
type Permission string

// Policy is a service's RBAC table: which roles grant which permissions,
// and which permission each RPC needs. Services declare it once, in code,
// next to their handlers.
type Policy struct {
	Roles   map[string][]Permission
	Methods map[string]Permission
	// Public methods need no credentials at all.
	Public map[string]bool
}

// Allowed reports whether any of p's roles grants the permission method
// needs. A method missing from the table is refused.
func (pol Policy) Allowed(p Principal, method string) bool {
	need, ok := pol.Methods[method]
	if !ok {
		return false
	}
	for _, r := range p.Roles {
		if slices.Contains(pol.Roles[r], need) {
			return true
		}
	}
	return false
}

// Covers returns an error naming any of methods that is neither public nor
// in the table; a test per service calls it with the service descriptor so
// a new RPC cannot ship unprotected by accident.
func (pol Policy) Covers(methods []string) error {
	for _, m := range methods {
		if _, ok := pol.Methods[m]; !ok && !pol.Public[m] {
			return fmt.Errorf("auth: method %s has no permission in the policy", m)
		}
	}
	return nil
}

// Methods lists a service's full method names, unary and streaming, as
// Policy.Covers wants them.
func Methods(sd *grpc.ServiceDesc) []string {
	var out []string
	for _, m := range sd.Methods {
		out = append(out, "/"+sd.ServiceName+"/"+m.MethodName)
	}
	for _, st := range sd.Streams {
		out = append(out, "/"+sd.ServiceName+"/"+st.StreamName)
	}
	return out
}
