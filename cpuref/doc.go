// Package cpuref is the float64 reference of the lecture's MLP: the oracle
// that every device result of the project is checked against. It computes the
// same math as the OpenCL kernels, one function per kernel (MatMul, AddBias,
// BiasReLU, ReLUMask, SoftmaxMinusLabels, ColSum, SGD, SGDVec) and the network
// built from them (Forward, Backward, Step, Loss), written for clarity and
// checked against calculus by a finite-difference test, never tuned for speed.
// It depends on nothing of the project's own; tests of other packages import it.
//
// # Layout
//
// Matrices are row-major *mat.Dense with the batch along the rows: a batch of
// n images is an n x 784 matrix X. A weight matrix W[l] is fanIn x fanOut
// (Sizes[l-1] x Sizes[l]) so that a layer reads Z = X W + b exactly as in the
// lecture, and a bias b[l] is a []float64 of fanOut entries added to every row.
//
// Slices indexed by layer run l = 1..L, L being the number of weight layers,
// and have L+1 entries with index 0 unused (nil) for W, B, DW, DB, DZ and
// Delta. The one exception is Z, where Z[0] is the input X. The unused slot
// lets the code read like the lecture and like the kernels' host code:
// dW[3] = Z[2]^T Delta[3] is DW[3] = MatMul(Z[2], Delta[3], true, false).
//
// With f = ReLU, the forward pass is
//
//	Z[l] = f(Z[l-1] W[l] + b[l])   for 1 <= l < L
//	Z[L] = Z[L-1] W[L] + b[L]      (the logits)
//	Yp   = softmax(Z[L])           per row
//
// and the backward pass, for the loss below, is
//
//	DZ[L]    = (Yp - Y) / batch
//	Delta[L] = DZ[L]
//	Delta[l] = f'(Z[l]) . DZ[l]    for l < L, elementwise
//	DZ[l-1]  = Delta[l] W[l]^T     for l >= 2 (no gradient for X)
//	DW[l]    = Z[l-1]^T Delta[l]
//	DB[l]    = column sums of Delta[l]
//
// which for L = 3 is the lecture's dZ3 = Yp - Y, dZ2 = dZ3 W3^T,
// dZ1 = [f'(Z1 W2 + b2) . dZ2] W2^T, dW3 = Z2^T dZ3, and so on.
//
// # Numbers
//
// Everything here is float64; the devices compute in float32. The loss is the
// batch mean of the cross-entropy -log Yp[r, label[r]], so its gradient with
// respect to the logits is (Yp - Y)/batch: the lecture's dZ3 = Yp - Y is the
// gradient of one example's loss, and the 1/batch comes from the mean. Every
// gradient downstream (DW, DB, DZ) carries that factor, so a learning rate
// means the same thing at any batch size.
//
// Device results are compared with RelErr (and RelErrVec):
//
//	RelErr(got, want) = ||got - want||_F / ||want||_F
//
// or ||got||_F where want is all zero. The project's tolerances are stated in
// it: 1e-5 for forward results (GEMMs, activations, softmax, loss) and 1e-4 for
// gradients and updated parameters, for float32 devices against this package.
//
// # Memory and errors
//
// Every function returns new matrices and leaves its inputs untouched, except
// SGD, SGDVec and Step, which update parameters in place as their names say.
// Activations.Z[0] is the caller's X itself, not a copy, and Grads.Delta[L] is
// Grads.DZ[L] itself.
//
// This is a test oracle, called with shapes its caller controls, so a shape
// mismatch panics (gonum's own panics or this package's) rather than returning
// an error; so does a label outside [0, classes), with a message naming the
// row. FromFloat32 is the exception: it converts buffers read back from a
// device, and reports a length mismatch as an error.
package cpuref
