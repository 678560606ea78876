package main

import (
	"bytes"
	"strings"
	"testing"
)

// A passing package prints its "ok" line only; a failing test prints its
// output; skips are summed up per package with their reason.
func TestReport(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"m/a"}`,
		`{"Action":"run","Package":"m/a","Test":"TestPass"}`,
		`{"Action":"output","Package":"m/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}`,
		`{"Action":"pass","Package":"m/a","Test":"TestPass"}`,
		`{"Action":"run","Package":"m/a","Test":"TestE2E"}`,
		`{"Action":"output","Package":"m/a","Test":"TestE2E","Output":"    e2e_test.go:40: SKIPPED LOUDLY: dendrite not found\n"}`,
		`{"Action":"output","Package":"m/a","Test":"TestE2E","Output":"--- SKIP: TestE2E (0.00s)\n"}`,
		`{"Action":"skip","Package":"m/a","Test":"TestE2E"}`,
		`{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.1s\n"}`,
		`{"Action":"pass","Package":"m/a"}`,
		`{"Action":"run","Package":"m/b","Test":"TestBroken"}`,
		`{"Action":"output","Package":"m/b","Test":"TestBroken","Output":"    b_test.go:9: got 1, want 2\n"}`,
		`{"Action":"fail","Package":"m/b","Test":"TestBroken"}`,
		`not json at all`,
		`{"Action":"output","Package":"m/b","Output":"FAIL\tm/b\t0.2s\n"}`,
		`{"Action":"fail","Package":"m/b"}`,
	}, "\n")
	var out bytes.Buffer
	r := newReport(&out)
	r.read(strings.NewReader(in))
	r.summary()
	got := out.String()
	for _, want := range []string{
		"ok  \tm/a\t0.1s\n",
		"b_test.go:9: got 1, want 2",
		"not json at all",
		"FAIL\tm/b\t0.2s",
		"1 test(s) SKIPPED in 1 package(s)",
		"SKIPPED m/a: 1 test(s), first: TestE2E: SKIPPED LOUDLY: dendrite not found",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN   TestPass") {
		t.Errorf("a passing test's output was printed:\n%s", got)
	}
}
