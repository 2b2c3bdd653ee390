// edgeq: see README.edgeq.md, "Checking an encrypted table".

package table

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"slices"

	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/y"
)

// verifyBlocks checks the checksum of every block that ti lists, one block
// at a time: each is read from the file (never from the block cache, which
// it leaves alone), an encrypted one decrypted into a buffer reused from
// block to block under one AES cipher, and nothing is kept. It is what
// VerifyChecksum does; block, which it used, decrypts into a new buffer,
// fetches the index (decrypting it again on an index-cache miss) and adds
// the block to the cache, and VerifyChecksum released the blocks only at
// its end, so that checking an encrypted table held all of it decrypted.
func (t *Table) verifyBlocks(ti *fb.TableIndex) error {
	var aesBlock cipher.Block
	if t.shouldDecrypt() {
		var err error
		if aesBlock, err = aes.NewCipher(t.opt.DataKey.Data); err != nil {
			return y.Wrapf(err, "while decrypt")
		}
	}
	var buf []byte
	for i := 0; i < ti.OffsetsLength(); i++ {
		var ko fb.BlockOffset
		var err error
		if !ti.Offsets(&ko, i) {
			err = errors.New("block out of index")
		} else {
			buf, err = t.verifyBlock(i, ko, aesBlock, buf)
		}
		if err != nil {
			return y.Wrapf(err, "checksum validation failed for table: %s, block: %d, offset:%d",
				t.Filename(), i, ko.Offset())
		}
	}
	return nil
}

// verifyBlock checks block i, at ko, decrypting it with aesBlock (nil: not
// encrypted) into buf, which it returns for the next block. A compressed
// block goes through block, uncached, and is released at once.
func (t *Table) verifyBlock(i int, ko fb.BlockOffset, aesBlock cipher.Block, buf []byte) ([]byte, error) {
	if t.opt.Compression != options.None {
		b, err := t.block(i, false)
		if err != nil {
			return buf, err
		}
		defer b.decrRef()
		return buf, b.verifyCheckSum()
	}
	data, err := t.read(int(ko.Offset()), int(ko.Len()))
	if err != nil {
		return buf, err
	}
	if aesBlock != nil {
		// As decrypt: the block's last aes.BlockSize bytes are its IV.
		if len(data) < aes.BlockSize {
			return buf, errors.New("block shorter than its IV")
		}
		iv := data[len(data)-aes.BlockSize:]
		data = data[:len(data)-aes.BlockSize]
		buf = slices.Grow(buf[:0], len(data))[:len(data)]
		cipher.NewCTR(aesBlock, iv).XORKeyStream(buf, data)
		data = buf
	}
	// The block's tail, as block reads it: ... | checksum | checksum length (4).
	if len(data) < 4 {
		return buf, errors.New("block shorter than its checksum length")
	}
	chkLen := int(y.BytesToU32(data[len(data)-4:]))
	if chkLen > len(data)-4 {
		return buf, errors.New("invalid checksum length. Either the data is " +
			"corrupted or the table options are incorrectly set")
	}
	end := len(data) - 4 - chkLen
	b := Block{data: data[:end], checksum: data[end : end+chkLen]}
	return buf, b.verifyCheckSum()
}
