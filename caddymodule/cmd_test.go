package caddymodule

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

func TestHashCommandJSON(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.txt")
	os.WriteFile(notImage, []byte("hello"), 0o600)
	var out, errOut bytes.Buffer
	failed := runHash(&out, &errOut, []string{notImage, filepath.Join(dir, "missing.jpg")}, hashing.FileOptions{PDQ: pdq.Options{Dihedral: true}}, true, false)
	if failed != 1 || !strings.Contains(errOut.String(), "missing.jpg") {
		t.Fatalf("failed=%d stderr=%q: a missing file must be reported and counted", failed, errOut.String())
	}
	var obj map[string]any
	if err := json.Unmarshal(out.Bytes(), &obj); err != nil {
		t.Fatalf("not one JSON object per line: %v", err)
	}
	for _, k := range []string{"file", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("key %q missing from %v", k, obj)
		}
	}
	if obj["md5"] != "5d41402abc4b2a76b9719d911017c592" || obj["pdq"] != "" {
		t.Errorf("unexpected report %v", obj)
	}
}

func TestHashCommandText(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.bin")
	os.WriteFile(f, nil, 0o600)
	var out, errOut bytes.Buffer
	if runHash(&out, &errOut, []string{f}, hashing.FileOptions{}, false, false) != 0 {
		t.Fatal(errOut.String())
	}
	if !strings.Contains(out.String(), "sha256       e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {
		t.Fatalf("text output: %q", out.String())
	}
}

func TestAuditCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	l.Append(audit.Record{Time: old, Kind: audit.KindBlock, Direction: "upload", Endpoint: "upload", User: "@old:example.org"})
	l.Append(audit.Record{Kind: audit.KindBlock, Direction: "download", Endpoint: "client_download", User: "@new:example.org", Media: "example.org/abc"})
	l.Close()
	var out bytes.Buffer
	from, err := parseSince("24h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := runAudit(&out, path, from, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "@old") || !strings.Contains(out.String(), "user=@new:example.org media=example.org/abc") {
		t.Fatalf("text output: %q", out.String())
	}
	out.Reset()
	if err := runAudit(&out, path, time.Time{}, true); err != nil || strings.Count(out.String(), "\n") != 2 {
		t.Fatalf("json output: %v %q", err, out.String())
	}
	if _, err := parseSince("yesterday", time.Now()); err == nil {
		t.Fatal("bad --since accepted")
	}
}

func TestAuditPathFromConfig(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "Caddyfile")
	os.WriteFile(cf, []byte("{\n\tmediaguard {\n\t\taudit_log /var/lib/mediaguard/audit.log\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"), 0o600)
	if got, err := auditPathFromConfig(cf, "caddyfile"); err != nil || got != "/var/lib/mediaguard/audit.log" {
		t.Fatalf("got %q, %v", got, err)
	}
	os.WriteFile(cf, []byte(":8080 {\n\trespond ok\n}\n"), 0o600)
	if _, err := auditPathFromConfig(cf, "caddyfile"); err == nil || !strings.Contains(err.Error(), "--log") {
		t.Fatalf("config without audit_log: %v", err)
	}
}

// animatedGIF writes a two-frame GIF, whose second frame is a form of the
// frame kind, and returns its path.
func animatedGIF(t *testing.T) string {
	t.Helper()
	var frames []*image.Paletted
	for seed := range 2 {
		img := testimg.Photo(seed+50, 96, 96)
		pm := image.NewPaletted(img.Bounds(), palette.Plan9)
		draw.Draw(pm, img.Bounds(), img, image.Point{}, draw.Src)
		frames = append(frames, pm)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: frames, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "anim.gif")
	os.WriteFile(path, b.Bytes(), 0o600)
	return path
}

// runHashCommand runs `hash ARGS...` as the CLI would and returns stdout.
func runHashCommand(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	c := hashCommand()
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&errOut)
	if err := c.Execute(); err != nil {
		t.Fatalf("hash %v: %v (%s)", args, err, errOut.String())
	}
	return out.String()
}

// With --variants, --json prints one object per hash, the picture as
// stored first, each with exactly file, name, variant, pdq and
// pdq_quality; text prints one line per hash with its kind. Without it
// the output keeps its shape.
func TestHashCommandVariants(t *testing.T) {
	gifPath := animatedGIF(t)
	for _, flags := range [][]string{{"--variants"}, {"--variants", "--deep"}, {"--deep"}} {
		out := runHashCommand(t, append(append([]string{"--json"}, flags...), gifPath)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 2 {
			t.Fatalf("%v: %q; want the stored picture and frame 2", flags, out)
		}
		var kinds []string
		for i, l := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(l), &obj); err != nil {
				t.Fatalf("%v: line %d %q: %v", flags, i, l, err)
			}
			var keys []string
			for k := range obj {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"file", "name", "pdq", "pdq_quality", "variant"}) {
				t.Fatalf("%v: line %d keys %v", flags, i, keys)
			}
			if obj["file"] != gifPath || len(obj["pdq"].(string)) != 64 {
				t.Fatalf("%v: line %d %v", flags, i, obj)
			}
			kinds = append(kinds, obj["variant"].(string)+"/"+obj["name"].(string))
		}
		if kinds[0] != "stored/" || !slices.Contains(kinds, "frame/frame 2") {
			t.Fatalf("%v: kinds %v", flags, kinds)
		}
	}
	text := runHashCommand(t, "--variants", gifPath)
	if !regexp.MustCompile(`(?m)^  variant      stored         [0-9a-f]{64} q\d+$`).MatchString(text) ||
		!regexp.MustCompile(`(?m)^  variant      frame          [0-9a-f]{64} q\d+ \(frame 2\)$`).MatchString(text) ||
		strings.Contains(text, "  form ") {
		t.Fatalf("text with --variants: %q", text)
	}

	plain := runHashCommand(t, gifPath)
	if strings.Contains(plain, "variant") || !regexp.MustCompile(`(?m)^  form         [0-9a-f]{64} q\d+ \(frame 2\)$`).MatchString(plain) {
		t.Fatalf("text without --variants: %q", plain)
	}
	var rep hashing.Report
	if err := json.Unmarshal([]byte(runHashCommand(t, "--json", gifPath)), &rep); err != nil || len(rep.Forms) != 1 || rep.Forms[0].Variant != "frame" {
		t.Fatalf("json without --variants: %+v %v", rep, err)
	}

	// A file without a PDQ hash is one line naming it, with the error.
	notImage := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notImage, []byte("hello"), 0o600)
	var obj map[string]any
	if err := json.Unmarshal([]byte(runHashCommand(t, "--variants", "--json", notImage)), &obj); err != nil || obj["file"] != notImage || obj["error"] == "" || obj["pdq"] != "" {
		t.Fatalf("not an image: %v %v", obj, err)
	}
}

// mediaguard hash hashes a JPEG as the proxy does by default (from its
// DCT blocks), so bank entries made with it match; --exact as the proxy
// does with pdq_exact, which is the reference convention.
func TestHashCommandExact(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "photo.jpg")
	data := testimg.JPEG(testimg.Photo(41, 640, 480), 90)
	os.WriteFile(f, data, 0o600)
	run := func(args ...string) string {
		c := hashCommand()
		var out bytes.Buffer
		c.SetOut(&out)
		c.SetArgs(append(args, "--json", f))
		if err := c.Execute(); err != nil {
			t.Fatal(err)
		}
		var rep struct{ PDQ string }
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%q: %v", out.String(), err)
		}
		return rep.PDQ
	}
	proxy, _, err := worker.HashViewedBytes(data, pdq.DecodeOptions{Viewed: true}, pdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := pdq.HashBytes(data, pdq.DecodeOptions{}, pdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(); got != proxy.Hash.String() {
		t.Errorf("hash: %s, the proxy hashes %s", got, proxy.Hash)
	}
	if got := run("--exact"); got != ref.Hash.String() {
		t.Errorf("hash --exact: %s, the reference convention is %s", got, ref.Hash)
	}
}
