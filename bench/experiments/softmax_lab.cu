// softmax_lab.cu: SM cycles of one consumer warp's online softmax over a 128-key stage (64 scores a
// thread, two rows, the pair kernel's register layout), with 128 other registers held live as the
// pair kernel holds Q (32), P (32) and the accumulators (64) beside S. One warp per SM
// sub-partition (128 threads, one CTA), as a consumer's softmax runs while the other consumer's
// warp on the same sub-partition issues its wgmmas. A lab for the softmax's form, not a test.
// Form 0 is a copy of ws_online_softmax (include/trimix/engine_cuda_ws.hpp at 1fd5587), not an
// include, so that the lab builds with nvcc alone (no Kokkos) on the device machine.
//   nvcc -arch=sm_90a -O3 -std=c++17 -Xptxas -v [-DLAB_REGS=232] softmax_lab.cu -o softmax_lab && ./softmax_lab
#include <cstdio>
#include <cstdlib>

#define FI __device__ __forceinline__
constexpr int NT = 16;  // 8-column tiles of S a thread covers: 128 keys
constexpr float slack = 8.0f;

FI float minus_inf() { return __int_as_float(0xff800000u); }
FI float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
FI unsigned pack_bf16(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %2, %1;" : "=r"(r) : "f"(lo), "f"(hi));
  return r;
}

// 0: head's ws_online_softmax (four chains a row for the max and the sum).
FI void softmax_head(float (&s)[NT][4], float scale, float (&row_max)[2], float (&row_sum)[2], float (&alpha)[2]) {
  const float mi = minus_inf();
  float mx[2][4];
#pragma unroll
  for (int h = 0; h < 2; ++h) mx[h][0] = mx[h][1] = mx[h][2] = mx[h][3] = mi;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) mx[e / 2][(nt % 2) * 2 + e % 2] = fmaxf(mx[e / 2][(nt % 2) * 2 + e % 2], s[nt][e]);
  float m[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) m[h] = fmaxf(fmaxf(mx[h][0], mx[h][1]), fmaxf(mx[h][2], mx[h][3]));
#pragma unroll
  for (int h = 0; h < 2; ++h) m[h] = fmaxf(m[h], __shfl_xor_sync(0xffffffffu, m[h], 1));
#pragma unroll
  for (int h = 0; h < 2; ++h) m[h] = fmaxf(m[h], __shfl_xor_sync(0xffffffffu, m[h], 2));
  float shift[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float m_tile = m[h] * scale;
    const float m_new = m_tile > row_max[h] + slack ? m_tile : row_max[h];
    shift[h] = m_new == mi ? 0.0f : m_new;
    alpha[h] = m_new == row_max[h] ? 1.0f : ex2(row_max[h] - m_new);
    row_max[h] = m_new;
  }
  float sum[2][4] = {};
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = ex2(fmaf(s[nt][e], scale, -shift[e / 2]));
      sum[e / 2][(nt % 2) * 2 + e % 2] += s[nt][e];
    }
#pragma unroll
  for (int h = 0; h < 2; ++h)
    row_sum[h] = row_sum[h] * alpha[h] + ((sum[h][0] + sum[h][1]) + (sum[h][2] + sum[h][3]));
}

// 1: speculative: exps against the running max at once, no max before them; the row's
// probabilities checked afterwards (max p over the thread's, a warp vote). Where a row's max p
// passes 2^slack (its tile max passed the running max by more than slack), the warp rescales by
// an exact power of two, 2^-E with E the exponent of the row's max p. The exponent argument is
// clamped at 126 so nothing overflows; a clamped row (E >= 126) would need S again (not here).
template <bool vote_on_max>
FI void softmax_spec(float (&s)[NT][4], float scale, float (&row_max)[2], float (&row_sum)[2], float (&alpha)[2]) {
  float shift[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) shift[h] = row_max[h] == minus_inf() ? 0.0f : row_max[h];
  float sum[2][4] = {}, mx[2][2];
#pragma unroll
  for (int h = 0; h < 2; ++h) mx[h][0] = mx[h][1] = 0.0f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = ex2(fminf(fmaf(s[nt][e], scale, -shift[e / 2]), 126.0f));
      sum[e / 2][(nt % 2) * 2 + e % 2] += s[nt][e];
      if (vote_on_max) mx[e / 2][e % 2] = fmaxf(mx[e / 2][e % 2], s[nt][e]);
    }
  float t[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    t[h] = (sum[h][0] + sum[h][1]) + (sum[h][2] + sum[h][3]);
    if (vote_on_max) mx[h][0] = fmaxf(mx[h][0], mx[h][1]);
  }
  constexpr float limit = 256.0f;  // 2^slack
  const bool rise = vote_on_max ? (mx[0][0] > limit || mx[1][0] > limit) : (t[0] > limit || t[1] > limit);
  alpha[0] = alpha[1] = 1.0f;
  if (__any_sync(0xffffffffu, rise)) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float m = 0.0f;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) m = fmaxf(m, fmaxf(s[nt][2 * h], s[nt][2 * h + 1]));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
      if (m > limit) {
        const int e = int((__float_as_uint(m) >> 23) & 0xffu) - 127;  // m = 2^e x [1, 2)
        const float f = __uint_as_float(unsigned(127 - e) << 23);        // 2^-e, exact
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          s[nt][2 * h] *= f;
          s[nt][2 * h + 1] *= f;
        }
        t[h] *= f;
        alpha[h] = f;
        row_max[h] = shift[h] + float(e);
      }
    }
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) row_sum[h] = row_sum[h] * alpha[h] + t[h];
}

// 3: the exps alone (MUFU stream + sums), the floor of any form.
FI void exps_only(float (&s)[NT][4], float scale, float (&row_max)[2], float (&row_sum)[2], float (&alpha)[2]) {
  float sum[2][4] = {};
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = ex2(fmaf(s[nt][e], scale, -row_max[e / 2]));
      sum[e / 2][(nt % 2) * 2 + e % 2] += s[nt][e];
    }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    row_sum[h] += (sum[h][0] + sum[h][1]) + (sum[h][2] + sum[h][3]);
    alpha[h] = 1.0f;
  }
}

// 4: the max alone (FMNMX chains + shuffles), head's form.
FI void max_only(float (&s)[NT][4], float scale, float (&row_max)[2], float (&row_sum)[2], float (&alpha)[2]) {
  const float mi = minus_inf();
  float mx[2][4];
#pragma unroll
  for (int h = 0; h < 2; ++h) mx[h][0] = mx[h][1] = mx[h][2] = mx[h][3] = mi;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) mx[e / 2][(nt % 2) * 2 + e % 2] = fmaxf(mx[e / 2][(nt % 2) * 2 + e % 2], s[nt][e]);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float m = fmaxf(fmaxf(mx[h][0], mx[h][1]), fmaxf(mx[h][2], mx[h][3]));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
    row_sum[h] += m;
    alpha[h] = 1.0f;
  }
}

// The pair kernel's masking of a partial stage (both halves): -inf where the thread's bits say
// not seen (R2P + FSEL in SASS).
FI void mask(float (&s)[NT][4], const unsigned long long (&bits)[2][2]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (((bits[nt / 8][e / 2] >> ((nt % 8) * 8 + e % 2)) & 1u) == 0) s[nt][e] = minus_inf();
}

template <int Form>
#ifndef LAB_REGS
#define LAB_REGS 232
#endif
__global__ void __maxnreg__(LAB_REGS) lab(const unsigned* in, float* out, long long* cycles, int iters, float scale) {
  const int tid = threadIdx.x;
  float s[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) s[nt][e] = float((tid * 37 + nt * 11 + e * 5) % 17) * 0.25f - 2.0f;
  unsigned keep[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) keep[i] = in[i * 128 + tid];  // loaded: ptxas cannot rematerialise them
  float row_max[2] = {0.5f, 0.25f}, row_sum[2] = {1.0f, 1.0f}, alpha[2];
  unsigned long long bits[2][2];
#pragma unroll
  for (int i = 0; i < 4; ++i) bits[i / 2][i % 2] = ~(0x0101010101010101ull << (i + (tid & 3)));  // a few columns hidden
  unsigned packed = 0;
  __syncwarp();
  const long long t0 = clock64();
  for (int it = 0; it < iters; ++it) {
    if (Form == 0) softmax_head(s, scale, row_max, row_sum, alpha);
    if (Form == 1) softmax_spec<false>(s, scale, row_max, row_sum, alpha);
    if (Form == 2) softmax_spec<true>(s, scale, row_max, row_sum, alpha);
    if (Form == 3) exps_only(s, scale, row_max, row_sum, alpha);
    if (Form == 4) max_only(s, scale, row_max, row_sum, alpha);
    if (Form == 5 || Form == 6) mask(s, bits);
    if (Form == 5) softmax_head(s, scale, row_max, row_sum, alpha);
    if (Form == 6) softmax_spec<false>(s, scale, row_max, row_sum, alpha);
    // P packed as the P V operand would take it, and S made opaque for the next round.
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) packed ^= pack_bf16(s[nt][0], s[nt][1]) ^ pack_bf16(s[nt][2], s[nt][3]);
    row_sum[0] *= alpha[0];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(s[nt][e]));
  }
  const long long t1 = clock64();
  unsigned k = packed;
#pragma unroll
  for (int i = 0; i < 128; ++i) k += keep[i];
  out[blockIdx.x * blockDim.x + tid] = row_sum[0] + row_sum[1] + row_max[0] + float(k & 1u);
  if (tid % 32 == 0) cycles[blockIdx.x * 4 + tid / 32] = t1 - t0;
}

template <int Form>
void run(const char* name, const unsigned* in, float* out, long long* cyc, int blocks) {
  const int iters = 4096;
  lab<Form><<<blocks, 128>>>(in, out, cyc, 16, 0.1275f);  // warm
  lab<Form><<<blocks, 128>>>(in, out, cyc, iters, 0.1275f);
  cudaDeviceSynchronize();
  long long h[4 * 132];
  cudaMemcpy(h, cyc, sizeof(long long) * 4 * blocks, cudaMemcpyDeviceToHost);
  long long lo = h[0], hi = h[0];
  for (int i = 0; i < 4 * blocks; ++i) {
    lo = h[i] < lo ? h[i] : lo;
    hi = h[i] > hi ? h[i] : hi;
  }
  std::printf("%-34s blocks %3d  cycles a stage: %7.1f (min) %7.1f (max)\n", name, blocks, double(lo) / iters,
              double(hi) / iters);
}

int main() {
  float* out;
  long long* cyc;
  unsigned* in;
  cudaMalloc(&in, sizeof(unsigned) * 128 * 128);
  cudaMemset(in, 1, sizeof(unsigned) * 128 * 128);
  cudaMalloc(&out, sizeof(float) * 128 * 132);
  cudaMalloc(&cyc, sizeof(long long) * 4 * 132);
  for (int blocks : {1, 132}) {
    run<0>("0 head (max, shuffles, exps)", in, out, cyc, blocks);
    run<1>("1 speculative, vote on sums", in, out, cyc, blocks);
    run<2>("2 speculative, vote on max p", in, out, cyc, blocks);
    run<3>("3 exps + sums only (floor)", in, out, cyc, blocks);
    run<4>("4 max + shuffles only", in, out, cyc, blocks);
    run<5>("5 masking + head", in, out, cyc, blocks);
    run<6>("6 masking + speculative (sums)", in, out, cyc, blocks);
  }
  const cudaError_t err = cudaGetLastError();
  std::printf("%s\n", cudaGetErrorString(err));
  return err == cudaSuccess ? 0 : 1;
}
