// Package nn is the lecture's network on an OpenCL device: parameters,
// activations and gradients in device buffers, the forward pass, the backward
// pass (exactly the lecture's equations), the SGD step and a training loop.
//
// # Layout
//
// Matrices are row-major float32 with the batch along the rows. W[l] is
// fanIn x fanOut so a layer is Z = X W + b, as in the lecture. Slices indexed
// by layer run 1..L with index 0 unused, except Z[0], which is the input
// batch X; code then reads like the lecture: dW[3] = Z[2]^T dZ[3].
//
// # One training step
//
// The step is declared once, in plan.go: NewPlan lists its tensors (name,
// shape, role) and its launches in order (kernel, GEMM form, epilogue,
// operands). NewNetwork allocates the tensors, Need counts them, Forward and
// BackwardStep run the launches, and the tuner's shapes (Shapes), bench's
// GEMMs, verify's checks and `mnist-cl plan` read them. In words:
//
//	GatherBatch   X, labels <- images[perm[first:first+rows]] / 255   (on the device)
//	GatherAffine  the same, each image distorted by its own random affine map
//	              (Config.Augment; Philox keyed by seed, image and epoch)
//	Forward       Z1 = f(X W1 + b1), Z2 = f(Z1 W2 + b2), Z3 = Z2 W3 + b3 (bias and
//	              ReLU applied by the GEMM as it writes), Yp = softmax(Z3),
//	              dZ3 = (Yp - Y)/rows (or the MSE loss's gradient), per-row loss and hit
//	Stats         the batch's loss and hit sums into one slot of a buffer
//	BackwardStep  per layer from the last: dZ2 = dZ3 W3^T masked by f'(Z2) as it
//	              is written (it reads the old W3), then one GEMM that makes
//	              dW3 = Z2^T dZ3 and db3 and steps W3 and b3 with them: W <- W - lr dW
//	              (the lecture's SGD), or PyTorch's SGD with momentum, Nesterov and
//	              weight decay. Backward and Step do the same apart, for tests.
//
// The loss is the batch mean, hence the 1/rows in dZ3. All of it is queued
// without waiting: per step nothing crosses to the host. The Trainer uploads
// each epoch's shuffle once (drawn from the seed and the epoch number, so a
// resumed run walks the same batches), reads the statistics at its waits
// every 64 steps, and catches a non-finite loss there with its epoch and
// step. The learning rate of each step comes from Config.LRAt, which depends
// only on the step's index, the schedule and the run's length.
//
// # Checkpoints
//
// A Checkpoint holds the parameters, the momentum velocities and the
// position (finished epochs and steps into the next) with the Config, as
// safetensors in PyTorch's names and layout (fc1.weight is [out, in]).
// Restore puts one into a Trainer of the same network and data; the run then
// ends with the same bits as a run never stopped.
//
// # Ownership
//
// A Runtime owns its context, queue and kernels; a Network, DeviceSet and
// Trainer own their buffers. Each has a Release (Close for the Runtime) that
// the caller calls; nothing is freed by finalizers. None of them is safe for
// concurrent use.
//
// # Determinism
//
// Weights are drawn on the host from the seed, so a seed gives the same
// initial network on every device. Every kernel sums in a fixed order (no
// atomics), so the same seed and flags give bit-identical weights on the same
// device. Across devices results differ in the last bits: the GEMMs' order of
// accumulation depends on the kernel (register or tiled) and on fma.
package nn
