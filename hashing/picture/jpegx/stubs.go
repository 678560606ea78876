package jpegx

type arithDecoder struct{}

func (a *arithDecoder) reset(data []byte, pos int) {}
func (a *arithDecoder) unreadPos() int             { return 0 }
func (a *arithDecoder) exhausted() bool            { return true }

func (d *decoder) arithResetStats(sc *scanInfo)                               {}
func (d *decoder) arithBlock(c *component, bi int, blk []int16, sc *scanInfo) {}
func (d *decoder) losslessScan(sc *scanInfo) error                            { return unsupported("lossless") }
func (d *decoder) losslessPlane(c *component) ([]byte, int)                   { return nil, 0 }
