package picture

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"sync"
	_ "unsafe" // go:linkname

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	// The WebAssembly builds of libheif+libde265 and libavif+dav1d ship in
	// these modules; their Go wrappers are not used (see below).
	_ "github.com/gen2brain/avif"
	_ "github.com/gen2brain/heic"
)

// Why not call heic.Decode / avif.Decode: in gen2brain/heic v0.4.5 and
// gen2brain/avif v0.4.4 (the versions the module proxy serves) the Go side
// returns the decoded pixels as a view into the WebAssembly memory and then
// frees that buffer, so the allocator's bookkeeping overwrites the first
// pixels; and heic assumes plane strides of align16(width), while libheif
// 1.18 pads every plane to at least 64 pixels, so images narrower than 128
// pixels come out with scrambled chroma and the C side writes past the Go-
// sized buffer. The C entry points are fine, so this file drives the same
// WebAssembly modules itself: exact strides, pixels copied out before any
// free, and stdout/stderr discarded.

//go:linkname heifWasmGz github.com/gen2brain/heic.heifWasm
var heifWasmGz []byte

//go:linkname avifWasmGz github.com/gen2brain/avif.decodeWasm
var avifWasmGz []byte

type wasmCodec struct {
	gz   *[]byte
	once sync.Once
	rt   wazero.Runtime
	cm   wazero.CompiledModule
	err  error
}

var (
	heifCodec = &wasmCodec{gz: &heifWasmGz}
	avifCodec = &wasmCodec{gz: &avifWasmGz}
)

// instance compiles the module on first use (about a second for libheif)
// and returns a fresh instance: each decode gets its own linear memory,
// released when the instance is closed.
func (c *wasmCodec) instance(ctx context.Context) (api.Module, error) {
	c.once.Do(func() {
		ctx := context.Background() // the runtime outlives this call
		if len(*c.gz) == 0 {
			c.err = errors.New("WebAssembly decoder not linked in")
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(*c.gz))
		if err != nil {
			c.err = err
			return
		}
		bin, err := io.ReadAll(zr)
		if err != nil {
			c.err = err
			return
		}
		// 2 GiB of linear memory at most per decode: the pixel limits are
		// checked before decoding; this bounds what a hostile file can make
		// the decoder allocate besides. (No deadline: wazero's
		// WithCloseOnContextDone made libheif ten times slower. Time is
		// bounded by the codecs' work per input byte and pixel, and the
		// proxy's hashing workers are killed past their CPU budget.)
		c.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(32768))
		wasi_snapshot_preview1.MustInstantiate(ctx, c.rt)
		c.cm, c.err = c.rt.CompileModule(ctx, bin)
	})
	if c.err != nil {
		return nil, c.err
	}
	return c.rt.InstantiateModule(ctx, c.cm, wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard))
}

// wasmCall wraps a module's malloc/free and exported functions.
type wasmCall struct {
	ctx   context.Context
	mod   api.Module
	ptrs  []uint64
	alloc api.Function
	free  api.Function
}

func newWasmCall(ctx context.Context, mod api.Module) *wasmCall {
	return &wasmCall{ctx: ctx, mod: mod, alloc: mod.ExportedFunction("malloc"), free: mod.ExportedFunction("free")}
}

func (w *wasmCall) malloc(n int) (uint32, error) {
	if n <= 0 || n > 1<<31 {
		return 0, fmt.Errorf("allocation of %d bytes", n)
	}
	res, err := w.alloc.Call(w.ctx, uint64(n))
	if err != nil {
		return 0, err
	}
	if res[0] == 0 {
		return 0, errors.New("out of WebAssembly memory")
	}
	w.ptrs = append(w.ptrs, res[0])
	return uint32(res[0]), nil
}

func (w *wasmCall) close() {
	w.mod.Close(w.ctx)
}

func (w *wasmCall) u32(p uint32) uint32 {
	v, _ := w.mod.Memory().ReadUint32Le(p)
	return v
}

// read copies n bytes out of the module's memory.
func (w *wasmCall) read(p uint32, n int) ([]byte, bool) {
	b, ok := w.mod.Memory().Read(p, uint32(n))
	if !ok {
		return nil, false
	}
	return bytes.Clone(b), true
}

func (w *wasmCall) input(data []byte) (uint32, error) {
	p, err := w.malloc(len(data))
	if err != nil {
		return 0, err
	}
	if !w.mod.Memory().Write(p, data) {
		return 0, errors.New("write failed")
	}
	return p, nil
}

// libheif's plane layout (1.16+): the row length in pixels is rounded up to
// an even number of at least 64, and the stride to 16 bytes.
func heifStride(w, bytesPerPixel int) int {
	mw := (w + 1) &^ 1
	if mw < 64 {
		mw = 64
	}
	return (mw*bytesPerPixel + 15) &^ 15
}

const (
	heifColorspaceYCbCr = 0
	heifColorspaceRGB   = 1
	heifColorspaceMono  = 2
	heifChroma420       = 1
	heifChroma422       = 2
	heifChroma444       = 3
)

// heifDecode runs libheif's decode(): with configOnly just the primary
// image's size (after transformations). check vets the size before any
// pixel memory is allocated.
func heifDecode(data []byte, configOnly bool, check func(w, h int) error) (image.Image, int, int, error) {
	ctx := context.Background()
	mod, err := heifCodec.instance(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	w := newWasmCall(ctx, mod)
	defer w.close()
	in, err := w.input(data)
	if err != nil {
		return nil, 0, 0, err
	}
	outs, err := w.malloc(20)
	if err != nil {
		return nil, 0, 0, err
	}
	dec := mod.ExportedFunction("decode")
	call := func(cfg uint64, out uint32) error {
		res, err := dec.Call(ctx, uint64(in), uint64(len(data)), cfg, uint64(outs), uint64(outs+4), uint64(outs+8), uint64(outs+12), uint64(outs+16), uint64(out))
		if err != nil {
			return err
		}
		if res[0] == 0 {
			return errors.New("libheif could not decode it")
		}
		return nil
	}
	if err := call(1, 0); err != nil {
		return nil, 0, 0, err
	}
	width, height := int(w.u32(outs)), int(w.u32(outs+4))
	cs, chroma, premul := w.u32(outs+8), w.u32(outs+12), w.u32(outs+16)
	if configOnly {
		return nil, width, height, nil
	}
	if err := check(width, height); err != nil {
		return nil, width, height, err
	}
	r := image.Rect(0, 0, width, height)
	switch cs {
	case heifColorspaceYCbCr:
		var ratio image.YCbCrSubsampleRatio
		cw, ch := width, height
		switch chroma {
		case heifChroma420:
			ratio, cw, ch = image.YCbCrSubsampleRatio420, (width+1)/2, (height+1)/2
		case heifChroma422:
			ratio, cw = image.YCbCrSubsampleRatio422, (width+1)/2
		case heifChroma444:
			ratio = image.YCbCrSubsampleRatio444
		default:
			return nil, width, height, fmt.Errorf("chroma format %d", chroma)
		}
		ys, cstr := heifStride(width, 1), heifStride(cw, 1)
		n := ys*height + 2*cstr*ch
		out, err := w.malloc(n)
		if err != nil {
			return nil, width, height, err
		}
		if err := call(0, out); err != nil {
			return nil, width, height, err
		}
		pix, ok := w.read(out, n)
		if !ok {
			return nil, width, height, errors.New("read failed")
		}
		i0, i1 := ys*height, ys*height+cstr*ch
		return &image.YCbCr{Y: pix[:i0], Cb: pix[i0:i1], Cr: pix[i1:], YStride: ys, CStride: cstr, SubsampleRatio: ratio, Rect: r}, width, height, nil
	case heifColorspaceMono:
		s := heifStride(width, 1)
		out, err := w.malloc(s * height)
		if err != nil {
			return nil, width, height, err
		}
		if err := call(0, out); err != nil {
			return nil, width, height, err
		}
		pix, ok := w.read(out, s*height)
		if !ok {
			return nil, width, height, errors.New("read failed")
		}
		return &image.Gray{Pix: pix, Stride: s, Rect: r}, width, height, nil
	case heifColorspaceRGB:
		s := heifStride(width, 4)
		out, err := w.malloc(s * height)
		if err != nil {
			return nil, width, height, err
		}
		if err := call(0, out); err != nil {
			return nil, width, height, err
		}
		pix, ok := w.read(out, s*height)
		if !ok {
			return nil, width, height, errors.New("read failed")
		}
		if premul == 1 {
			return &image.RGBA{Pix: pix, Stride: s, Rect: r}, width, height, nil
		}
		return &image.NRGBA{Pix: pix, Stride: s, Rect: r}, width, height, nil
	}
	return nil, width, height, fmt.Errorf("colour space %d", cs)
}

// avifDecode runs libavif's decode(): the first frame, or with all every
// frame of a sequence. Pixels come back premultiplied RGBA, 8 or 16 bits.
// check vets size and frame count before any pixel memory is allocated.
func avifDecode(data []byte, configOnly, all bool, check func(w, h, frames int) error) ([]image.Image, int, int, error) {
	ctx := context.Background()
	mod, err := avifCodec.instance(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	w := newWasmCall(ctx, mod)
	defer w.close()
	in, err := w.input(data)
	if err != nil {
		return nil, 0, 0, err
	}
	outs, err := w.malloc(16)
	if err != nil {
		return nil, 0, 0, err
	}
	dec := mod.ExportedFunction("decode")
	call := func(cfg, decodeAll uint64, delay, out uint32) error {
		res, err := dec.Call(ctx, uint64(in), uint64(len(data)), cfg, decodeAll, uint64(outs), uint64(outs+4), uint64(outs+8), uint64(outs+12), uint64(delay), uint64(out))
		if err != nil {
			return err
		}
		if res[0] == 0 {
			return errors.New("libavif could not decode it")
		}
		return nil
	}
	if err := call(1, 0, 0, 0); err != nil {
		return nil, 0, 0, err
	}
	width, height, depth, count := int(w.u32(outs)), int(w.u32(outs+4)), int(w.u32(outs+8)), int(w.u32(outs+12))
	if configOnly {
		return nil, width, height, nil
	}
	if count < 1 {
		count = 1
	}
	if !all {
		count = 1
	}
	if err := check(width, height, count); err != nil {
		return nil, width, height, err
	}
	bpp := 4
	if depth > 8 {
		bpp = 8
	}
	size := width * height * bpp
	out, err := w.malloc(size * count)
	if err != nil {
		return nil, width, height, err
	}
	delay, err := w.malloc(8 * count)
	if err != nil {
		return nil, width, height, err
	}
	da := uint64(0)
	if all {
		da = 1
	}
	if err := call(0, da, delay, out); err != nil {
		return nil, width, height, err
	}
	r := image.Rect(0, 0, width, height)
	var frames []image.Image
	for i := 0; i < count; i++ {
		pix, ok := w.read(out+uint32(i*size), size)
		if !ok {
			return nil, width, height, errors.New("read failed")
		}
		if bpp == 4 {
			frames = append(frames, &image.RGBA{Pix: pix, Stride: 4 * width, Rect: r})
			continue
		}
		// libavif's 16-bit samples are little-endian; image.RGBA64 is
		// big-endian.
		for j := 0; j+1 < len(pix); j += 2 {
			v := binary.LittleEndian.Uint16(pix[j:])
			binary.BigEndian.PutUint16(pix[j:], v)
		}
		frames = append(frames, &image.RGBA64{Pix: pix, Stride: 8 * width, Rect: r})
	}
	return frames, width, height, nil
}
