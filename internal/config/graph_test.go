package config

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/msctl/msctl/internal/errkind"
)

func graphProject() *Project {
	return &Project{Services: []Service{
		{Name: "web", Calls: []string{"order"}},
		{Name: "user"}, {Name: "inventory"}, {Name: "payment"},
		{Name: "order", Calls: []string{"user", "inventory", "payment"}},
	}}
}

func TestClosure(t *testing.T) {
	p := graphProject()
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, "[user inventory payment order web]"},
		{[]string{"web"}, "[user inventory payment order web]"},
		{[]string{"order", "user"}, "[user inventory payment order]"},
		{[]string{"payment"}, "[payment]"},
	} {
		got, err := p.Closure(tc.names)
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("Closure(%v) = %v, %v; want %s", tc.names, got, err, tc.want)
		}
	}
	if _, err := p.Closure([]string{"web", "nope"}); errkind.Of(err) != errkind.BadInput || err.Error() != `unknown service "nope" (the project has web, user, inventory, payment, order)` {
		t.Errorf("an unknown service: %v", err)
	}
}

func TestLevels(t *testing.T) {
	p := graphProject()
	for _, tc := range []struct {
		names []string
		want  [][]string
	}{
		{nil, [][]string{{"user", "inventory", "payment"}, {"order"}, {"web"}}},
		{[]string{"web", "order"}, [][]string{{"order"}, {"web"}}},
		// A callee reached through a service not named still comes first.
		{[]string{"web", "user"}, [][]string{{"user"}, {"web"}}},
		{[]string{"web", "payment", "inventory"}, [][]string{{"inventory", "payment"}, {"web"}}},
		{[]string{"payment"}, [][]string{{"payment"}}},
		{[]string{"user", "payment"}, [][]string{{"user", "payment"}}},
	} {
		if got := p.Levels(tc.names); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Levels(%v) = %v, want %v", tc.names, got, tc.want)
		}
	}
}
