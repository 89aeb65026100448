package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// yieldEvery is how many values decode reads between two calls of its
// yield function: about 0.15 ms of decoding numbers.
const yieldEvery = 1024

// decodeOptions read JSON as encoding/json does: the last of duplicate
// names wins, and invalid UTF-8 in strings becomes U+FFFD.
var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// decode decodes one JSON value into what filters walk, the values
// encoding/json's Decoder with UseNumber makes: map[string]any, []any,
// json.Number (the number's text), string, bool and nil. It reads with
// jsontext (an ordinary payload in 0.6× encoding/json's time; one of
// large arrays, whose time goes to making their values, in the same),
// and calls yield, if not nil, every yieldEvery values, so that a caller
// decoding a large payload can let other goroutines run.
func decode(raw []byte, yield func()) (any, error) {
	// From a bytes.Buffer the decoder reads raw in place.
	d := decoder{dec: jsontext.NewDecoder(bytes.NewBuffer(raw), decodeOptions...), yield: yield}
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("trailing data after the JSON value")
		}
		return nil, err
	}
	return v, nil
}

// decoder is one decode in progress.
type decoder struct {
	dec   *jsontext.Decoder
	yield func()
	n     int
}

// value reads the next value.
func (d *decoder) value() (any, error) {
	if d.n++; d.yield != nil && d.n%yieldEvery == 0 {
		d.yield()
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 'f', 't':
		return tok.Bool(), nil
	case '"':
		return tok.String(), nil
	case '0':
		return json.Number(tok.String()), nil
	case '[':
		list := []any{}
		for d.dec.PeekKind() != ']' {
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := d.dec.ReadToken()
		return list, err
	case '{':
		obj := map[string]any{}
		for d.dec.PeekKind() != '}' {
			tok, err := d.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String() // before the next read voids tok
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			obj[name] = v
		}
		_, err := d.dec.ReadToken()
		return obj, err
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok.Kind())
}
