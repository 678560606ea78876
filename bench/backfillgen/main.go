// Command backfillgen writes a synthetic media store in Synapse's layout
// (github.com/element-hq/synapse docs/media_repository.md: local_content/
// aa/bb/rest, remote_content/SERVER/aa/bb/rest, thumbnails beside) of
// small mixed pictures, for timing `mediaguard backfill` against
// `mediaguard hash` over the same files (bench/backfill.sh).
//
// Every file is distinct. JPEG, PNG and GIF are encoded here; WebP, which
// Go cannot encode, comes from cwebp for a few dozen base pictures, each
// copy made distinct by bytes after its RIFF end (decoders stop there).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

func main() {
	dir := flag.String("dir", "", "media store to create (must not exist)")
	n := flag.Int("n", 10000, "original files")
	list := flag.String("list", "", "write the original files' paths here, one a line")
	webpBases := flag.Int("webp-bases", 48, "distinct WebP pictures encoded with cwebp (0: no WebP)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if _, err := os.Stat(*dir); err == nil {
		log.Fatalf("%s exists", *dir)
	}
	webps := makeWebPs(*webpBases)
	paths := make([]string, *n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := range next {
				paths[i] = writeOne(*dir, i, webps)
			}
		})
	}
	for i := range *n {
		next <- i
	}
	close(next)
	wg.Wait()
	if *list != "" {
		f, err := os.Create(*list)
		if err != nil {
			log.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for _, p := range paths {
			fmt.Fprintln(w, p)
		}
		if err := w.Flush(); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// mediaID is a Synapse-like 24-letter ID, unique per i.
func mediaID(r *rand.Rand, i int) string {
	b := make([]byte, 24)
	for k := range b {
		b[k] = alphabet[r.IntN(len(alphabet))]
	}
	copy(b[16:], fmt.Sprintf("%08d", i))
	return string(b)
}

// writeOne writes original i (local four times in five, else remote),
// a thumbnail for one in four, and returns the original's path.
func writeOne(dir string, i int, webps [][]byte) string {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	id := mediaID(r, i)
	w, h := 96+r.IntN(224), 96+r.IntN(224)
	img := testimg.Photo(i, w, h)
	var body []byte
	switch k := i % 4; {
	case k == 0:
		body = testimg.JPEG(img, 70+r.IntN(25))
	case k == 1:
		body = testimg.PNG(img)
	case k == 2:
		body = gifOf(img)
	case len(webps) > 0:
		body = append(append([]byte(nil), webps[i%len(webps)]...), []byte(fmt.Sprintf("pad%08d", i))...)
	default:
		body = testimg.JPEG(img, 85)
	}
	rel := filepath.Join("local_content", id[:2], id[2:4], id[4:])
	thumb := filepath.Join("local_thumbnails", id[:2], id[2:4], id[4:], "32-32-image-jpeg-scale")
	if i%5 == 4 {
		server := fmt.Sprintf("remote%d.example", i%3)
		rel = filepath.Join("remote_content", server, id[:2], id[2:4], id[4:])
		thumb = filepath.Join("remote_thumbnail", server, id[:2], id[2:4], id[4:], "32-32-image-jpeg-scale")
	}
	write(filepath.Join(dir, rel), body)
	if i%4 == 0 {
		write(filepath.Join(dir, thumb), testimg.JPEG(testimg.Resize(img, 32, 32), 75))
	}
	return filepath.Join(dir, rel)
}

func gifOf(img image.Image) []byte {
	var b bytes.Buffer
	if err := gif.Encode(&b, img, &gif.Options{NumColors: 256}); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

func write(path string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

// makeWebPs encodes n distinct pictures with cwebp; none when it is
// missing (the store is then JPEG, PNG and GIF).
func makeWebPs(n int) [][]byte {
	if n == 0 {
		return nil
	}
	if _, err := exec.LookPath("cwebp"); err != nil {
		log.Printf("cwebp not installed: no WebP files (apt-get install webp)")
		return nil
	}
	tmp, err := os.MkdirTemp("", "backfillgen-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	out := make([][]byte, n)
	for i := range n {
		in, dst := filepath.Join(tmp, "in.png"), filepath.Join(tmp, "out.webp")
		var b bytes.Buffer
		png.Encode(&b, testimg.Photo(100000+i, 128+i%128, 128+(i*7)%128))
		write(in, b.Bytes())
		if o, err := exec.Command("cwebp", "-quiet", "-q", "80", in, "-o", dst).CombinedOutput(); err != nil {
			log.Fatalf("cwebp: %v: %s", err, o)
		}
		if out[i], err = os.ReadFile(dst); err != nil {
			log.Fatal(err)
		}
	}
	return out
}
