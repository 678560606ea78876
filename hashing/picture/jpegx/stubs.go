package jpegx

func (d *decoder) losslessScan(sc *scanInfo) error          { return unsupported("lossless") }
func (d *decoder) losslessPlane(c *component) ([]byte, int) { return nil, 0 }
