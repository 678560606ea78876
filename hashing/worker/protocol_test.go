package worker

import (
	"bufio"
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// The search level and pdq_exact cross the pipe, so a worker hashes as
// the in-process path would.
func TestRequestCarriesSearch(t *testing.T) {
	for _, s := range []pdq.Search{pdq.SearchOff, pdq.SearchDefault, pdq.SearchDeep} {
		var b bytes.Buffer
		opt := pdq.Options{Dihedral: true, Search: s}
		exact := s == pdq.SearchDefault
		if err := writeRequest(&b, strings.NewReader("abc"), 3, pdq.DecodeOptions{MaxPixels: 7, Viewed: true, Exact: exact}, opt); err != nil {
			t.Fatal(err)
		}
		q, err := readRequest(&b)
		if err != nil {
			t.Fatal(err)
		}
		if q.opt.Search != s || !q.opt.Dihedral || !q.dopt.Viewed || q.dopt.Exact != exact || q.dopt.MaxPixels != 7 || q.size != 3 {
			t.Errorf("%v: read %+v", s, q)
		}
	}
	if err := writeRequest(new(bytes.Buffer), strings.NewReader(""), 0, pdq.DecodeOptions{}, pdq.Options{Search: pdq.SearchDeep + 1}); err == nil {
		t.Error("an unknown search level was sent")
	}
	var h [reqHeaderLen]byte
	h[9] = byte(pdq.SearchDeep + 1)
	if _, err := readRequest(bytes.NewReader(h[:])); err == nil {
		t.Error("an unknown search level was read")
	}
}

func roundTrip(t *testing.T, res pdq.Result) pdq.Result {
	t.Helper()
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := writeResponse(w, res, nil); err != nil {
		t.Fatal(err)
	}
	got, err := readResponse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Fatalf("%d bytes left unread", b.Len())
	}
	return got
}

// Every form keeps its kind across the pipe, and its name, hash and
// quality beside it.
func TestResponseCarriesVariants(t *testing.T) {
	res := pdq.Result{Hash: pdq.Hash{1, 2, 3, 4}, Quality: 90}
	for i, v := range variantCodes {
		res.Forms = append(res.Forms, pdq.Form{
			Name: "form " + strconv.Itoa(i), Variant: v,
			Hash: pdq.Hash{uint64(i), ^uint64(i), 5, 6}, Quality: i,
		})
	}
	if got := roundTrip(t, res); got.Hash != res.Hash || !slices.Equal(got.Forms, res.Forms) {
		t.Fatalf("sent %+v\ngot  %+v", res.Forms, got.Forms)
	}
}

// A kind this binary does not know still sends the form (its hash is
// what blocks), without the kind.
func TestResponseUnknownKindKeepsTheForm(t *testing.T) {
	res := pdq.Result{Forms: []pdq.Form{{Name: "x", Variant: "sideways", Hash: pdq.Hash{9}, Quality: 80}}}
	got := roundTrip(t, res)
	if len(got.Forms) != 1 || got.Forms[0].Hash != (pdq.Hash{9}) || got.Forms[0].Variant != "" {
		t.Fatalf("got %+v", got.Forms)
	}
}

// A variant code outside the table is a malformed answer.
func TestResponseUnknownCodeIsAProtocolError(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeResponse(w, pdq.Result{Forms: []pdq.Form{{Name: "ab", Variant: pdq.VariantQuadrant}}}, nil)
	raw := b.Bytes()
	// The code follows the 4-byte header, the hash and quality, the
	// dihedral count, the form count, the name length and the name.
	at := respHeaderLen + hashLen + 5 + 2 + 1 + 2
	if raw[at] != variantCode(pdq.VariantQuadrant) {
		t.Fatalf("byte %d is %d, not the quadrant code", at, raw[at])
	}
	raw[at] = byte(len(variantCodes))
	if _, err := readResponse(bytes.NewReader(raw)); !errors.Is(err, errProtocol) {
		t.Fatalf("got %v; want errProtocol", err)
	}
}

// An answer keeps the first maxForms forms, in order.
func TestResponseBoundsForms(t *testing.T) {
	var res pdq.Result
	for i := range maxForms + 10 {
		res.Forms = append(res.Forms, pdq.Form{Name: strconv.Itoa(i), Variant: pdq.VariantWindow, Hash: pdq.Hash{uint64(i)}})
	}
	got := roundTrip(t, res)
	if len(got.Forms) != maxForms || !slices.Equal(got.Forms, res.Forms[:maxForms]) {
		t.Fatalf("got %d forms", len(got.Forms))
	}
}

// Every Variant constant of package pdq has a wire code, each its own: a
// kind added there and forgotten here would cross the pipe unlabelled.
func TestEveryVariantHasACode(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), "../pdq", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Variant") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Errorf("pdq.%s is not a string literal", name.Name)
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						n++
						if variantCode(v) == 0 {
							t.Errorf("pdq.%s (%q) has no wire code", name.Name, v)
						}
					}
				}
			}
		}
	}
	if n < len(variantCodes)-1 {
		t.Fatalf("found only %d Variant constants in package pdq", n)
	}
	seen := map[string]bool{}
	for _, v := range variantCodes {
		if seen[v] {
			t.Errorf("%q has two codes", v)
		}
		seen[v] = true
	}
}
