package modcmd

import (
	"math"
	"testing"
)

func TestPowerLevels(t *testing.T) {
	for _, tc := range []struct {
		name, create, creator, levels string
		want                          map[string]int64
	}{
		{"users and default", `{"room_version":"10"}`, "@owner:x",
			`{"users":{"@owner:x":100,"@mod:x":50,"@helper:x":49},"users_default":0}`,
			map[string]int64{"@owner:x": 100, "@mod:x": 50, "@helper:x": 49, "@nobody:x": 0}},
		{"default raised", `{"room_version":"10"}`, "@owner:x", `{"users":{"@muted:x":-1},"users_default":50}`,
			map[string]int64{"@someone:x": 50, "@muted:x": -1}},
		{"strings of digits (old rooms)", `{"room_version":"1"}`, "@owner:x", `{"users":{"@mod:x":"50","@bad:x":"fifty","@f:x":50.5},"users_default":"10"}`,
			map[string]int64{"@mod:x": 50, "@bad:x": 10, "@f:x": 10, "@other:x": 10}},
		{"missing users_default", `{}`, "@owner:x", `{"users":{"@mod:x":50}}`,
			map[string]int64{"@mod:x": 50, "@other:x": 0}},
		{"no power levels: creator has 100", `{"room_version":"10"}`, "@owner:x", "",
			map[string]int64{"@owner:x": 100, "@other:x": 0}},
		{"v12 creators outrank", `{"room_version":"12","additional_creators":["@co:x"]}`, "@owner:x", `{"users":{"@mod:x":50}}`,
			map[string]int64{"@owner:x": math.MaxInt64, "@co:x": math.MaxInt64, "@mod:x": 50, "@other:x": 0}},
		{"additional_creators only from v12", `{"room_version":"11","additional_creators":["@co:x"]}`, "@owner:x", `{"users":{"@owner:x":100}}`,
			map[string]int64{"@owner:x": 100, "@co:x": 0}},
		{"huge values", `{}`, "@o:x", `{"users":{"@a:x":99999999999999999999,"@b:x":9007199254740991}}`,
			map[string]int64{"@a:x": 0, "@b:x": 9007199254740991}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p PowerLevels
			p.SetCreate(tc.creator, []byte(tc.create))
			if tc.levels != "" {
				if err := p.SetLevels([]byte(tc.levels)); err != nil {
					t.Fatal(err)
				}
			}
			for u, want := range tc.want {
				if got := p.Level(u); got != want {
					t.Errorf("Level(%s) = %d, want %d", u, got, want)
				}
			}
		})
	}
	var p PowerLevels
	if err := p.SetLevels([]byte(`{"users":{"@m:x":50}}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.SetLevels([]byte(`[1,2]`)); err == nil || p.Level("@m:x") != 50 {
		t.Errorf("a malformed event replaced the levels in force: %v, %d", err, p.Level("@m:x"))
	}
}
