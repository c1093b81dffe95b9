package app

import (
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/config"
)

func TestLoadConfigDependencyAddresses(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		err  string // "" means valid
	}{
		{"defaults", nil, ""},
		{"host:port", map[string]string{"USER_ADDR": "127.0.0.1:18090"}, ""},
		{"DNS name", map[string]string{"INVENTORY_ADDR": "inventory.shop.svc:9090"}, ""},
		{"nonsense", map[string]string{"USER_ADDR": "nonsense"}, `USER_ADDR: "nonsense" is not host:port`},
		{"no port", map[string]string{"PAYMENT_ADDR": "dns:///payment"}, "PAYMENT_ADDR:"},
		{"every bad one named", map[string]string{"USER_ADDR": "x", "INVENTORY_ADDR": "y:99999"},
			`USER_ADDR: "x" is not host:port (for example user:9090 or dns:///user.shop.svc:9090); INVENTORY_ADDR: "y:99999" has port`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(config.FromMap(tc.env))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Deps.UserAddr == "" || c.Deps.InventoryAddr == "" || c.Deps.PaymentAddr == "" {
					t.Fatalf("an address is empty: %+v", c.Deps)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want it to contain %q", err, tc.err)
			}
		})
	}
}
