package bypass

import (
	"bytes"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mediaguard/mediaguard/internal/edits"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// Encoded are forms made with the field's own encoders (Debian's webp,
// libheif-examples, libjxl-tools, libjpeg-turbo-progs), which Go lacks.
// Needs names the program; a test skips a form loudly where it is not
// installed (.ci/run installs them all).
var Encoded = []Form{
	{"webp lossy", "image/webp", program("cwebp", ".png", ".webp", func(in, out string) []string { return []string{"-quiet", "-q", "90", in, "-o", out} })},
	{"webp lossless", "image/webp", program("cwebp", ".png", ".webp", func(in, out string) []string { return []string{"-quiet", "-lossless", in, "-o", out} })},
	{"animated webp, the picture as frame 2 behind a decoy", "image/webp", func(img *image.NRGBA) []byte {
		return run("img2webp", img, ".png", ".webp", func(in, out string) []string {
			decoy := filepath.Join(filepath.Dir(in), "decoy.png")
			os.WriteFile(decoy, testimg.PNG(testimg.Photo(999, img.Bounds().Dx(), img.Bounds().Dy())), 0o600)
			return []string{"-loop", "0", "-lossy", "-q", "90", "-d", "500", decoy, in, "-o", out}
		})
	}},
	{"negative in a WebP whose ICC profile inverts it back", "image/webp", func(img *image.NRGBA) []byte {
		return runOn("cwebp", pngWithICC(img), ".png", ".webp", func(in, out string) []string {
			return []string{"-quiet", "-metadata", "icc", "-q", "92", in, "-o", out}
		})
	}},
	{"matroska audio with the picture as an attachment", "video/x-matroska", func(img *image.NRGBA) []byte {
		return runOn("ffmpeg", testimg.JPEG(img, 90), ".jpg", ".mkv", func(in, out string) []string {
			return []string{"-nostdin", "-loglevel", "error", "-f", "lavfi", "-t", "1", "-i", "anullsrc=r=8000:cl=mono",
				"-attach", in, "-metadata:s:t", "mimetype=image/jpeg", "-c:a", "pcm_s16le", out}
		})
	}},
	{"m4a audio whose cover art is the picture", "audio/mp4", func(img *image.NRGBA) []byte {
		return runOn("ffmpeg", testimg.JPEG(img, 90), ".jpg", ".m4a", func(in, out string) []string {
			return []string{"-nostdin", "-loglevel", "error", "-f", "lavfi", "-t", "1", "-i", "anullsrc=r=8000:cl=mono", "-i", in,
				"-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "copy", "-disposition:v", "attached_pic", "-t", "1", out}
		})
	}},
	{"video of the picture letterboxed with black bars", "video/mp4", func(img *image.NRGBA) []byte {
		return runOn("ffmpeg", testimg.PNG(edits.Letterbox(img)), ".png", ".mp4", func(in, out string) []string {
			return []string{"-nostdin", "-loglevel", "error", "-loop", "1", "-i", in, "-t", "2", "-r", "5",
				"-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-crf", "18", out}
		})
	}},
	{"webp with pixels rotated behind its EXIF orientation", "image/webp", func(img *image.NRGBA) []byte {
		return runOn("cwebp", WithEXIFOrientation(testimg.JPEG(rotateCCW(img), 92), 6), ".jpg", ".webp", func(in, out string) []string {
			return []string{"-quiet", "-metadata", "exif", "-q", "92", in, "-o", out}
		})
	}},
	{"heic", "image/heic", program("heif-enc", ".png", ".heic", func(in, out string) []string { return []string{"-q", "90", in, "-o", out} })},
	{"jpeg xl", "image/jxl", program("cjxl", ".png", ".jxl", func(in, out string) []string { return []string{in, out, "-q", "90", "--quiet"} })},
	{"arithmetic-coded jpeg", "image/jpeg", program("cjpeg", ".ppm", ".jpg", func(in, out string) []string { return []string{"-arithmetic", "-quality", "90", "-outfile", out, in} })},
	{"jpeg with every restart marker numbered 0", "image/jpeg", func(img *image.NRGBA) []byte {
		return renumberRestarts(run("cjpeg", img, ".ppm", ".jpg", func(in, out string) []string {
			return []string{"-restart", "1", "-quality", "90", "-outfile", out, in}
		}))
	}},
	{"progressive jpeg with a restart marker every row", "image/jpeg", program("cjpeg", ".ppm", ".jpg", func(in, out string) []string {
		return []string{"-progressive", "-restart", "1", "-quality", "90", "-outfile", out, in}
	})},
}

// Needs is the program a form of Encoded is made with.
func Needs(f Form) string { return needs[f.Name] }

var needs = map[string]string{}

func program(name, inExt, outExt string, args func(in, out string) []string) func(*image.NRGBA) []byte {
	return func(img *image.NRGBA) []byte { return run(name, img, inExt, outExt, args) }
}

func run(name string, img *image.NRGBA, inExt, outExt string, args func(in, out string) []string) []byte {
	data := testimg.PNG(img)
	if inExt == ".ppm" {
		data = ppm(img)
	}
	return runOn(name, data, inExt, outExt, args)
}

// runOn runs an encoder on data, already in its input format.
func runOn(name string, data []byte, inExt, outExt string, args func(in, out string) []string) []byte {
	dir, err := os.MkdirTemp("", "bypass-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "in"+inExt), filepath.Join(dir, "out"+outExt)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		panic(err)
	}
	if b, err := exec.Command(name, args(in, out)...).CombinedOutput(); err != nil {
		panic(fmt.Sprintf("%s: %v: %s", name, err, b))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		panic(err)
	}
	return b
}

// ppm is the input cjpeg reads.
func ppm(img *image.NRGBA) []byte {
	b := img.Bounds()
	var out bytes.Buffer
	fmt.Fprintf(&out, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.NRGBAAt(x, y)
			out.Write([]byte{c.R, c.G, c.B})
		}
	}
	return out.Bytes()
}

func init() {
	for _, f := range Encoded {
		switch f.Name {
		case "webp lossy", "webp lossless", "negative in a WebP whose ICC profile inverts it back", "webp with pixels rotated behind its EXIF orientation":
			needs[f.Name] = "cwebp"
		case "animated webp, the picture as frame 2 behind a decoy":
			needs[f.Name] = "img2webp"
		case "heic":
			needs[f.Name] = "heif-enc"
		case "jpeg xl":
			needs[f.Name] = "cjxl"
		case "matroska audio with the picture as an attachment", "m4a audio whose cover art is the picture", "video of the picture letterboxed with black bars":
			needs[f.Name] = "ffmpeg"
		default:
			needs[f.Name] = "cjpeg"
		}
	}
}

// All is Images, Containers, Edits and the Encoded forms whose encoder is installed; a
// missing one is logged as SKIPPED, or fails the test where the end-to-end
// requirement is set (CI).
func All(t testing.TB) []Form {
	t.Helper()
	forms := append(append(append(append([]Form(nil), Images...), Decoders...), Containers...), Edits...)
	for _, f := range Encoded {
		if _, err := exec.LookPath(Needs(f)); err != nil {
			if os.Getenv("MEDIAGUARD_REQUIRE_E2E") != "" {
				t.Fatalf("bypass form %q needs %s, which is not installed, but MEDIAGUARD_REQUIRE_E2E is set", f.Name, Needs(f))
			}
			t.Logf("SKIPPED bypass form %q: %s is not installed (apt-get install webp libheif-examples libjxl-tools libjpeg-turbo-progs)", f.Name, Needs(f))
			continue
		}
		forms = append(forms, f)
	}
	return forms
}
