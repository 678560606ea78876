package hashing

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func TestDigesterMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 63, 64, blockSize - 1, blockSize, blockSize + 1, 3*blockSize + 17, 10*blockSize + 5, 5 << 20}
	chunks := []int{1, 7, 4096, 32 << 10, blockSize, 1 << 20}
	for _, size := range sizes {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		want := Digests{MD5: md5.Sum(data), SHA1: sha1.Sum(data), SHA256: sha256.Sum256(data), Size: int64(size)}
		for _, chunk := range chunks {
			if size > 1<<20 && chunk < 4096 {
				continue // too slow to be worth it
			}
			d := NewDigester()
			for p := data; len(p) > 0; {
				n := min(chunk, len(p))
				if k, err := d.Write(p[:n]); k != n || err != nil {
					t.Fatalf("Write = %d, %v", k, err)
				}
				p = p[n:]
			}
			if got := d.Sum(); got != want {
				t.Errorf("size %d chunk %d: digests differ", size, chunk)
			}
			d.Close() // after Sum: must be a no-op
		}
	}
}

func TestDigesterAsTeeTarget(t *testing.T) {
	data := bytes.Repeat([]byte("mediaguard"), 100_000)
	d := NewDigester()
	var sink bytes.Buffer
	if _, err := io.Copy(&sink, io.TeeReader(bytes.NewReader(data), d)); err != nil {
		t.Fatal(err)
	}
	got := d.Sum()
	if got.SHA256 != sha256.Sum256(data) || got.Size != int64(len(data)) || !bytes.Equal(sink.Bytes(), data) {
		t.Fatal("tee through the Digester changed the stream or the digest")
	}
	if got.MD5Hex() != "" && len(got.MD5Hex()) != 32 || len(got.SHA1Hex()) != 40 || len(got.SHA256Hex()) != 64 {
		t.Fatal("hex lengths wrong")
	}
}

// TestDigesterCloseReleasesGoroutines covers an upload aborted half way: no
// lane may be left running.
func TestDigesterCloseReleasesGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 50 {
		d := NewDigester()
		d.Write(make([]byte, 3*blockSize+1))
		d.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines leaked: %d before, %d after", before, n)
	}
}

func TestDigesterWriteAfterSumPanics(t *testing.T) {
	d := NewDigester()
	d.Sum()
	defer func() {
		if recover() == nil {
			t.Fatal("Write after Sum must panic: it would silently hash nothing")
		}
	}()
	d.Write([]byte("x"))
}
