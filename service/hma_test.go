package service

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hmaapi"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// The HMA surface is wired to the service's own banks, guard and proxy:
// a file the banks list is found by the digests /h/hash gives for it, the
// banks are listed, and the body bound defaults to max_upload_size.
func TestServiceHMA(t *testing.T) {
	dir := t.TempDir()
	listed := []byte("%PDF-1.4 listed bytes, not an image")
	sum := sha256.Sum256(listed)
	bank := filepath.Join(dir, "b.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Local: matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TEST", Path: bank}}},
		Proxy: mediaproxy.Config{TempDir: dir, Hashing: mediaproxy.HashingInline, MaxUploadSize: 1 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var answers []string
	h, err := s.HMA(HMAConfig{OnAnswer: func(a hmaapi.Answer) { answers = append(answers, a.Route+"/"+a.Outcome) }})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("photo", "x")
	fw.Write(listed)
	mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/h/hash", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 || !strings.Contains(w.Body.String(), hex.EncodeToString(sum[:])) {
		t.Fatalf("/h/hash: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/m/lookup?signal_type=sha256&signal="+hex.EncodeToString(sum[:]), nil))
	if w.Code != 200 || !strings.HasPrefix(w.Body.String(), `{"TEST":[{"bank_content_id":`) {
		t.Errorf("/m/lookup: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/c/banks", nil))
	if w.Body.String() != `[{"matching_enabled_ratio":1.0,"name":"TEST"}]`+"\n" {
		t.Errorf("/c/banks: %s", w.Body)
	}
	req = httptest.NewRequest(http.MethodPost, "/h/hash", nil)
	req.ContentLength = 2 << 20
	req.Header.Set("Content-Type", mw.FormDataContentType())
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Errorf("a body over max_upload_size: %d", w.Code)
	}
	if strings.Join(answers, " ") != "hash/ok lookup/match banks/ok hash/bad_request" {
		t.Errorf("answers %v", answers)
	}
	var nilService *Service
	if _, err := nilService.HMA(HMAConfig{}); err == nil {
		t.Error("HMA of a nil service")
	}
}
