// Package safetensors reads and writes float32 tensors in the Hugging Face
// safetensors format, so that a model trained by mnist-cl can be loaded by
// PyTorch, numpy or any other safetensors reader, and back.
//
// A file is an 8-byte little-endian length N, N bytes of a UTF-8 JSON
// object, and a byte buffer. Each key of the object but "__metadata__"
// names a tensor and maps to its dtype, shape and data_offsets, the
// [begin, end) of its bytes in the buffer; "__metadata__", if present, maps
// strings to strings. Data is little-endian and row-major. Write pads the
// JSON with spaces to a multiple of 8 bytes, so the data is 8-byte aligned,
// as the reference implementation does.
//
// The reader is strict: it refuses what the reference implementation
// refuses (a header over 100,000,000 bytes, one not starting with '{',
// invalid JSON or UTF-8, offsets that leave a hole, overlap or do not end
// at the end of the file, a shape that disagrees with the byte count or
// overflows) and, beyond it, duplicate keys (which JSON decoders resolve
// differently, so two readers could load different weights from one file),
// unknown keys in a tensor's entry, an empty tensor name, "__metadata__"
// that is not an object of strings, padding other than spaces, and any
// dtype but F32. It allocates nothing that the size of its input does not
// justify, so a corrupt or hostile file cannot make it exhaust memory.
package safetensors
