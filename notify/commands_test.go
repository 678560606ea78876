package notify

import (
	"slices"
	"testing"
)

func TestCommands(t *testing.T) {
	tmpl := []string{"!mjolnir quarantine-media {mxc}", "!mjolnir redact {user} --quarantine", "!mjolnir rules"}
	for _, tc := range []struct {
		name string
		d    Detection
		want []string
	}{
		{"both known", Detection{User: "@bad:example.org", MXC: "mxc://example.org/AbC123"},
			[]string{"!mjolnir quarantine-media mxc://example.org/AbC123", "!mjolnir redact @bad:example.org --quarantine", "!mjolnir rules"}},
		{"user unknown", Detection{MXC: "mxc://example.org/AbC123"},
			[]string{"!mjolnir quarantine-media mxc://example.org/AbC123", "!mjolnir rules"}},
		{"injection in user", Detection{User: "@x:example.org --all\n!mjolnir shutdown", MXC: ""}, []string{"!mjolnir rules"}},
		{"injection in mxc", Detection{User: "", MXC: "mxc://a/b c"}, []string{"!mjolnir rules"}},
	} {
		if got := Commands(tmpl, tc.d); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q want %q", tc.name, got, tc.want)
		}
	}
	if Commands(nil, Detection{User: "@a:b"}) != nil {
		t.Error("no templates must give no commands (command mode is off by default)")
	}
}
