// Command decoders compares mediaguard's bytes → PDQ, per image format,
// with the best decoder Debian has for that format merely decoding the
// same file (process start included, as a worker process would pay it),
// on one photo written in each format. It is the per-format figure of
// BENCHMARKS.md "Hashing at the decoder's speed".
//
//	go run -tags nodynamic ./bench/decoders [-n 20] [-photo PATH]
//
// The photo defaults to the PDQ vectors' 1600×1004 bridge (../shared);
// a synthetic 1600×1000 photo stands in where that is absent. Formats
// whose encoder or decoder is not installed are reported as skipped.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/gen2brain/avif"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/internal/benchcpu"
	"github.com/mediaguard/mediaguard/internal/sharedref"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

var (
	n         = flag.Int("n", 20, "runs per measurement (the median is reported)")
	photoPath = flag.String("photo", "", "a JPEG photo (default: the PDQ vectors' bridge)")
)

type format struct {
	name   string
	data   []byte
	frames int
	// decoder is the external decoder's command line for input in,
	// output out; nil when none is installed.
	decoder []string
}

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "decoders")
	must(err)
	defer os.RemoveAll(dir)
	src := *photoPath
	if src == "" {
		if d, ok := sharedref.Find(); ok {
			src = filepath.Join(d, "pdq-vectors", "bridge-mods", "aaa-orig.jpg")
		}
	}
	var jpg []byte
	var img image.Image
	if src != "" {
		jpg, err = os.ReadFile(src)
		must(err)
		img, err = jpeg.Decode(bytes.NewReader(jpg))
		must(err)
	} else {
		fmt.Println("SKIPPED the bridge photo: ../shared is absent; a synthetic photo stands in")
		img = testimg.Photo(5, 1600, 1000)
		jpg = testimg.JPEG(img, 90)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, data, 0o600))
		return p
	}
	pngPath := write("photo.png", testimg.PNG(img))
	encode := func(out string, cmd ...string) []byte {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			return nil
		}
		if o, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			fmt.Printf("%s: %v %s\n", cmd[0], err, o)
			return nil
		}
		data, _ := os.ReadFile(out)
		return data
	}
	pal := func(im image.Image) *image.Paletted {
		pm := image.NewPaletted(im.Bounds(), palette.Plan9)
		draw.Draw(pm, im.Bounds(), im, image.Point{}, draw.Src)
		return pm
	}
	var gif1, gif8 bytes.Buffer
	must(gif.Encode(&gif1, pal(img), nil))
	var frames []*image.Paletted
	for i := range 8 {
		frames = append(frames, pal(testimg.Photo(10+i, img.Bounds().Dx(), img.Bounds().Dy())))
	}
	must(gif.EncodeAll(&gif8, &gif.GIF{Image: frames, Delay: make([]int, 8)}))
	var pngb bytes.Buffer
	must(png.Encode(&pngb, img))
	webp := encode(filepath.Join(dir, "photo.webp"), "cwebp", "-quiet", "-q", "90", pngPath, "-o", filepath.Join(dir, "photo.webp"))
	var avifb bytes.Buffer
	must(avif.Encode(&avifb, img, avif.Options{Quality: 80, Speed: 10}))
	heic := encode(filepath.Join(dir, "photo.heic"), "heif-enc", "-q", "90", pngPath, "-o", filepath.Join(dir, "photo.heic"))
	formats := []format{
		{"JPEG", jpg, 1, []string{"djpeg", "-outfile", "OUT", "IN"}},
		{"JPEG (djpeg -scale 1/8)", jpg, 1, []string{"djpeg", "-scale", "1/8", "-outfile", "OUT", "IN"}},
		{"PNG", pngb.Bytes(), 1, []string{"pngtopnm", "IN"}},
		{"WebP", webp, 1, []string{"dwebp", "-quiet", "-pam", "IN", "-o", "OUT"}},
		{"GIF", gif1.Bytes(), 1, []string{"giftopnm", "IN"}},
		{"GIF, 8 frames", gif8.Bytes(), 8, []string{"giftopnm", "--image=all", "IN"}},
		{"AVIF", avifb.Bytes(), 1, []string{"avifdec", "IN", "OUT.png"}},
		{"HEIC", heic, 1, []string{"heif-convert", "IN", "OUT.png"}},
	}
	b := img.Bounds()
	fmt.Printf("photo %s, %dx%d; %s, %d cores, %s; mediaguard: CPU time, mean of %d runs; decoders: wall time (median) and CPU (mean) of as many\n\n", filepath.Base(orDefault(src, "synthetic")), b.Dx(), b.Dy(), cpuName(), runtime.NumCPU(), runtime.Version(), *n)
	fmt.Println("| format | bytes | mediaguard bytes → every form, search default (CPU ms) | per frame | search off | pdq_exact | best decoder here, decode only (ms, process start included) | ratio mediaguard CPU / decoder wall |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, f := range formats {
		if f.data == nil {
			fmt.Printf("| %s | skipped: encoder not installed | | | | | | |\n", f.name)
			continue
		}
		// The thread's CPU time is kept in scheduler ticks, so one
		// call is timed as the mean over n.
		hash := func(s pdq.Search, exact bool) float64 {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			run := func() {
				if _, _, err := worker.HashViewedBytes(f.data, pdq.DecodeOptions{Viewed: true, Exact: exact}, pdq.Options{Workers: 1, Search: s}); err != nil {
					panic(fmt.Sprintf("%s: %v", f.name, err))
				}
			}
			run()
			t0 := benchcpu.Thread()
			for range *n {
				run()
			}
			return ms(benchcpu.Thread()-t0) / float64(*n)
		}
		mg, off := hash(pdq.SearchDefault, false), hash(pdq.SearchOff, false)
		exact := "—"
		if f.name == "JPEG" {
			exact = fmt.Sprintf("%.1f", hash(pdq.SearchDefault, true))
		}
		dec, ratio := "not installed", ""
		if _, err := exec.LookPath(f.decoder[0]); err == nil {
			in := write("in-"+fmt.Sprint(len(f.data)), f.data)
			out := filepath.Join(dir, "out")
			args := make([]string, len(f.decoder)-1)
			for i, a := range f.decoder[1:] {
				switch a {
				case "IN":
					a = in
				case "OUT":
					a = out
				case "OUT.png":
					a = out + ".png"
				}
				args[i] = a
			}
			var cpu []float64
			d := median(func() float64 {
				c := exec.Command(f.decoder[0], args...)
				c.Stdout = nil // pnm to /dev/null for the netpbm tools
				t0 := time.Now()
				if err := c.Run(); err != nil {
					panic(fmt.Sprintf("%s: %v", f.decoder[0], err))
				}
				cpu = append(cpu, ms(c.ProcessState.UserTime()+c.ProcessState.SystemTime()))
				return ms(time.Since(t0))
			})
			var sum float64
			for _, c := range cpu {
				sum += c
			}
			dec = fmt.Sprintf("%.1f wall, %.1f CPU (`%s`)", d, sum/float64(len(cpu)), f.decoder[0])
			ratio = fmt.Sprintf("%.2f", mg/d)
		}
		fmt.Printf("| %s | %d | %.1f | %.1f | %.1f | %s | %s | %s |\n", f.name, len(f.data), mg, mg/float64(f.frames), off, exact, dec, ratio)
	}
}

func median(f func() float64) float64 {
	f() // warm: tables, caches, page cache
	v := make([]float64, *n)
	for i := range v {
		v[i] = f()
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func cpuName() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range bytes.Split(data, []byte("\n")) {
		if k, v, ok := bytes.Cut(l, []byte(":")); ok && bytes.Equal(bytes.TrimSpace(k), []byte("model name")) {
			return string(bytes.TrimSpace(v))
		}
	}
	return runtime.GOARCH
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
