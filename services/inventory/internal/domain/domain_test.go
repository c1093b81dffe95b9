package domain

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestNewProduct(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.UTC)
	p, err := NewProduct("  SKU-1 ", " Widget ", 250, 7, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.SKU != "SKU-1" || p.Name != "Widget" || p.Available != 7 || p.Reserved != 0 || p.Version != 1 ||
		!p.CreatedAt.Equal(now.Truncate(time.Microsecond)) || len(p.ID) != 36 {
		t.Fatalf("NewProduct = %+v", p)
	}
	for _, c := range []struct {
		name, sku, pname string
		price, stock     int64
		field            string
	}{
		{"no sku", " ", "x", 1, 1, "sku"},
		{"no name", "s", "", 1, 1, "name"},
		{"negative price", "s", "x", -1, 1, "price_cents"},
		{"negative stock", "s", "x", 1, -1, "initial_stock"},
		{"price beyond the largest charge", "s", "x", MaxPriceCents + 1, 1, "price_cents"},
		{"stock beyond the bound", "s", "x", 1, MaxUnits + 1, "initial_stock"},
		{"price that would overflow a total", "s", "x", 1 << 62, 1, "price_cents"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewProduct(c.sku, c.pname, c.price, c.stock, now)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("err = %v, want a ValidationError on %s", err, c.field)
			}
		})
	}
}

func TestNormalizeItems(t *testing.T) {
	got, err := NormalizeItems([]Item{{"b", 1}, {"a", 2}, {"b", 3}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Item{{"a", 2}, {"b", 4}}; !slices.Equal(got, want) {
		t.Fatalf("NormalizeItems = %v, want %v", got, want)
	}
	for _, c := range []struct {
		name  string
		items []Item
		field string
	}{
		{"empty", nil, "items"},
		{"zero quantity", []Item{{"a", 1}, {"b", 0}}, "items[1].quantity"},
		{"negative quantity", []Item{{"a", -2}}, "items[0].quantity"},
		{"no product", []Item{{"", 1}}, "items[0].product_id"},
		{"quantity beyond the bound", []Item{{"a", 1}, {"b", MaxUnits + 1}}, "items[1].quantity"},
		{"quantities that would overflow", []Item{{"a", 1<<63 - 1}, {"a", 3}}, "items[0].quantity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NormalizeItems(c.items)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("err = %v, want a ValidationError on %s", err, c.field)
			}
		})
	}
}
