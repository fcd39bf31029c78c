package localapi

import (
	"encoding/xml"
	"fmt"
	"io"
)

// maxXMLToken bounds one run of text, or one tag with its attributes, in a
// sheet's XML. A cell holds at most 32,767 characters (Excel's limit), under
// 200 KB however they are escaped; a longer run is a memory bomb (the XML
// decoders hold a whole run at once).
const maxXMLToken = 256 << 10

// xmlTokenError reports a run longer than maxXMLToken.
type xmlTokenError struct{}

func (*xmlTokenError) Error() string {
	return fmt.Sprintf("a run of XML text or a tag is longer than %d bytes", maxXMLToken)
}

// checkSheetXML reads one XML part to its end as a strict decoder does,
// holding at most maxXMLToken of it: an illegal character or a syntax error
// anywhere is reported (excelize's row reader stops at the first one and
// reports nothing, silently dropping the rows after it).
func checkSheetXML(r io.Reader) error {
	d := xml.NewDecoder(&runLimitReader{r: r})
	for {
		if _, err := d.Token(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// runLimitReader fails once a run of bytes without '<' or '>' exceeds
// maxXMLToken, before a decoder buffers more of it.
type runLimitReader struct {
	r   io.Reader
	run int
}

func (l *runLimitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '<' || b == '>' {
			l.run = 0
		} else if l.run++; l.run > maxXMLToken {
			return 0, &xmlTokenError{}
		}
	}
	return n, err
}
