// chutes-gpu-proof: the CUDA side of the open GPU proof (docs/gpu-proof.md), a sidecar
// process the GPU agent drives over stdin/stdout (one process per GPU).
//
//   chutes-gpu-proof list                       JSON array of the visible GPUs
//   chutes-gpu-proof serve --device N           JSON-lines plan executor (the agent's protocol)
//   chutes-gpu-proof bench --device N [--n 16384] [--reps 10] [--peak-tops T]
//                                              GEMM throughput: ours vs int8 peak vs cuBLASLt
//
// A plan (built by src/gpu-proof/engine.ts) names the level-0 matrices to generate and the
// pair steps to run; for each step this computes S_a <- fold(S_a * S_b^T), then
// S_b <- fold(S_b * S_a^T), and returns the tree root of both new states. Everything is
// integer arithmetic, so the result is bit-identical to the TypeScript reference on any
// GPU; the agent's start-up self-test checks exactly that against the committed vectors.
//
// Kernels: ChaCha20 fill (one thread per 64-byte block), int8 NT GEMM on tensor cores
// (mma.sync m16n8k32 s8, int32 accumulation, fold fused in the epilogue; a dp4a kernel for
// sizes the tiles do not cover), SHA-256 tree hash (one thread per 4096-byte leaf, then per
// group of 128 digests). cuBLASLt is used only by `bench`, loaded with dlopen, as the
// same-run baseline.

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

// ---------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), device side
// ---------------------------------------------------------------------------------------

__constant__ uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

__device__ __forceinline__ uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

__device__ void sha256_block(uint32_t state[8], const uint8_t block[64]) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) {
    w[i] = (uint32_t(block[4 * i]) << 24) | (uint32_t(block[4 * i + 1]) << 16) | (uint32_t(block[4 * i + 2]) << 8) |
           uint32_t(block[4 * i + 3]);
  }
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

__device__ void sha256(const uint8_t* data, uint32_t len, uint8_t out[32]) {
  uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block[64];
  uint32_t full = len / 64;
  for (uint32_t b = 0; b < full; b++) {
    for (int i = 0; i < 64; i++) block[i] = data[64 * b + i];
    sha256_block(state, block);
  }
  uint32_t rest = len - 64 * full;
  for (uint32_t i = 0; i < 64; i++) block[i] = i < rest ? data[64 * full + i] : 0;
  block[rest] = 0x80;
  if (rest >= 56) {
    sha256_block(state, block);
    for (int i = 0; i < 64; i++) block[i] = 0;
  }
  uint64_t bits = uint64_t(len) * 8;
  for (int i = 0; i < 8; i++) block[63 - i] = uint8_t(bits >> (8 * i));
  sha256_block(state, block);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = uint8_t(state[i] >> 24);
    out[4 * i + 1] = uint8_t(state[i] >> 16);
    out[4 * i + 2] = uint8_t(state[i] >> 8);
    out[4 * i + 3] = uint8_t(state[i]);
  }
}

constexpr uint32_t LEAF_BYTES = 4096;
constexpr uint32_t FANOUT = 128;

// Level 0: digest i = SHA-256(state[i*4096 .. (i+1)*4096)).
__global__ void tree_leaves(const uint8_t* state, uint32_t leaves, uint8_t* digests) {
  uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < leaves) sha256(state + uint64_t(i) * LEAF_BYTES, LEAF_BYTES, digests + 32 * uint64_t(i));
}

// Level k+1: digest i = SHA-256(children[128 i .. min(128 i + 128, count))).
__global__ void tree_parents(const uint8_t* children, uint32_t count, uint8_t* parents) {
  uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  uint32_t groups = (count + FANOUT - 1) / FANOUT;
  if (i >= groups) return;
  uint32_t first = i * FANOUT;
  uint32_t take = count - first < FANOUT ? count - first : FANOUT;
  sha256(children + 32 * uint64_t(first), 32 * take, parents + 32 * uint64_t(i));
}

// ---------------------------------------------------------------------------------------
// ChaCha20 (RFC 8439) fill: block b of matrix m = ChaCha20(K, counter b, nonce (0, m, 0))
// ---------------------------------------------------------------------------------------

struct ChaChaKey {
  uint32_t k[8];
};

__device__ __forceinline__ uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

#define QR(a, b, c, d)   \
  a += b;                \
  d = rotl(d ^ a, 16);   \
  c += d;                \
  b = rotl(b ^ c, 12);   \
  a += b;                \
  d = rotl(d ^ a, 8);    \
  c += d;                \
  b = rotl(b ^ c, 7);

__global__ void chacha_fill(ChaChaKey key, uint32_t n0, uint32_t n1, uint32_t n2, uint64_t blocks, uint8_t* out) {
  uint64_t b = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, key.k[0], key.k[1], key.k[2], key.k[3],
                     key.k[4],   key.k[5],   key.k[6],   key.k[7],   uint32_t(b), n0,     n1,       n2};
  uint32_t x[16];
  for (int i = 0; i < 16; i++) x[i] = in[i];
  for (int r = 0; r < 10; r++) {
    QR(x[0], x[4], x[8], x[12]);
    QR(x[1], x[5], x[9], x[13]);
    QR(x[2], x[6], x[10], x[14]);
    QR(x[3], x[7], x[11], x[15]);
    QR(x[0], x[5], x[10], x[15]);
    QR(x[1], x[6], x[11], x[12]);
    QR(x[2], x[7], x[8], x[13]);
    QR(x[3], x[4], x[9], x[14]);
  }
  uint32_t* words = reinterpret_cast<uint32_t*>(out + 64 * b);  // little-endian host and device
  for (int i = 0; i < 16; i++) words[i] = x[i] + in[i];
}

// ---------------------------------------------------------------------------------------
// int8 NT GEMM with the fold fused: out[i][j] = fold(sum_k x[i][k] * y[j][k]) as int8
// ---------------------------------------------------------------------------------------

__device__ __forceinline__ int8_t fold(int32_t c) {
  uint32_t u = uint32_t(c);
  return int8_t(uint8_t(u ^ (u >> 8) ^ (u >> 16) ^ (u >> 24)));
}

// Tensor cores, sm_80+: 128x128 block tile, BK = 64, 8 warps of 64x32, mma m16n8k32.
constexpr int BM = 128, BN = 128, BK = 64, PAD = 16, LDS = BK + PAD;

__global__ void __launch_bounds__(256) gemm_fold_mma(const int8_t* x, const int8_t* y, int8_t* out, int n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) int8_t xs[BM * LDS];
  __shared__ __align__(16) int8_t ys[BN * LDS];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, tig = lane % 4;
  const int warp_m = warp / 4, warp_n = warp % 4;  // 2 x 4 warps
  const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
  int32_t acc[4][4][4] = {};
  for (int k0 = 0; k0 < n; k0 += BK) {
    // 128 rows x 64 bytes per operand = 512 16-byte chunks: two per thread.
    for (int c = tid; c < BM * BK / 16; c += 256) {
      int r = c / (BK / 16), q = c % (BK / 16);
      *reinterpret_cast<int4*>(&xs[r * LDS + 16 * q]) =
          *reinterpret_cast<const int4*>(&x[size_t(row0 + r) * n + k0 + 16 * q]);
      *reinterpret_cast<int4*>(&ys[r * LDS + 16 * q]) =
          *reinterpret_cast<const int4*>(&y[size_t(col0 + r) * n + k0 + 16 * q]);
    }
    __syncthreads();
    for (int kk = 0; kk < BK; kk += 32) {
      uint32_t a[4][4], b[4][2];
      for (int mi = 0; mi < 4; mi++) {
        int r = warp_m * 64 + mi * 16 + g;
        a[mi][0] = *reinterpret_cast<const uint32_t*>(&xs[r * LDS + kk + 4 * tig]);
        a[mi][1] = *reinterpret_cast<const uint32_t*>(&xs[(r + 8) * LDS + kk + 4 * tig]);
        a[mi][2] = *reinterpret_cast<const uint32_t*>(&xs[r * LDS + kk + 16 + 4 * tig]);
        a[mi][3] = *reinterpret_cast<const uint32_t*>(&xs[(r + 8) * LDS + kk + 16 + 4 * tig]);
      }
      for (int ni = 0; ni < 4; ni++) {
        int c = warp_n * 32 + ni * 8 + g;
        b[ni][0] = *reinterpret_cast<const uint32_t*>(&ys[c * LDS + kk + 4 * tig]);
        b[ni][1] = *reinterpret_cast<const uint32_t*>(&ys[c * LDS + kk + 16 + 4 * tig]);
      }
      for (int mi = 0; mi < 4; mi++) {
        for (int ni = 0; ni < 4; ni++) {
          int32_t* d = acc[mi][ni];
          asm volatile(
              "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
              "{%0,%1,%2,%3};\n"
              : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
              : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1]));
        }
      }
    }
    __syncthreads();
  }
  for (int mi = 0; mi < 4; mi++) {
    for (int ni = 0; ni < 4; ni++) {
      int r = row0 + warp_m * 64 + mi * 16 + g;
      int c = col0 + warp_n * 32 + ni * 8 + 2 * tig;
      out[size_t(r) * n + c] = fold(acc[mi][ni][0]);
      out[size_t(r) * n + c + 1] = fold(acc[mi][ni][1]);
      out[size_t(r + 8) * n + c] = fold(acc[mi][ni][2]);
      out[size_t(r + 8) * n + c + 1] = fold(acc[mi][ni][3]);
    }
  }
#endif
}

// dp4a, any n that is a multiple of 4: a 16x16 output tile per block, k in steps of 4.
__global__ void gemm_fold_dp4a(const int8_t* x, const int8_t* y, int8_t* out, int n) {
  int i = blockIdx.y * 16 + threadIdx.y, j = blockIdx.x * 16 + threadIdx.x;
  if (i >= n || j >= n) return;
  const int* xr = reinterpret_cast<const int*>(x + size_t(i) * n);
  const int* yr = reinterpret_cast<const int*>(y + size_t(j) * n);
  int32_t acc = 0;
  for (int k = 0; k < n / 4; k++) acc = __dp4a(xr[k], yr[k], acc);
  out[size_t(i) * n + j] = fold(acc);
}

__global__ void fold_int32(const int32_t* c, int8_t* out, size_t count) {
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) out[i] = fold(c[i]);
}

// ---------------------------------------------------------------------------------------
// The device: matrix slots, the scratch slot, and plan execution
// ---------------------------------------------------------------------------------------

enum class Gemm { Mma, Dp4a };

struct Device {
  int index = 0;
  Gemm gemm = Gemm::Mma;
  int8_t* arena = nullptr;
  size_t arenaBytes = 0;
  uint8_t* digests = nullptr;  // two levels of tree digests
  size_t digestBytes = 0;

  void reserve(size_t bytes, size_t digestSpace) {
    if (bytes > arenaBytes) {
      if (arena) check(cudaFree(arena), "cudaFree");
      arena = nullptr;
      check(cudaMalloc(&arena, bytes), "cudaMalloc (matrices)");
      arenaBytes = bytes;
    }
    if (digestSpace > digestBytes) {
      if (digests) check(cudaFree(digests), "cudaFree");
      digests = nullptr;
      check(cudaMalloc(&digests, digestSpace), "cudaMalloc (digests)");
      digestBytes = digestSpace;
    }
  }

  void product(const int8_t* x, const int8_t* y, int8_t* out, int n) const {
    if (gemm == Gemm::Mma && n % 128 == 0) {
      dim3 grid(n / BN, n / BM);
      gemm_fold_mma<<<grid, 256>>>(x, y, out, n);
    } else {
      dim3 grid((n + 15) / 16, (n + 15) / 16), block(16, 16);
      gemm_fold_dp4a<<<grid, block>>>(x, y, out, n);
    }
    check(cudaGetLastError(), "gemm launch");
  }

  std::string root(const int8_t* state, int n) const {
    uint32_t count = uint32_t((uint64_t(n) * n) / LEAF_BYTES);
    uint8_t* level = digests;
    uint8_t* next = digests + 32 * uint64_t(count);
    tree_leaves<<<(count + 127) / 128, 128>>>(reinterpret_cast<const uint8_t*>(state), count, level);
    while (count > 1) {
      uint32_t groups = (count + FANOUT - 1) / FANOUT;
      tree_parents<<<(groups + 127) / 128, 128>>>(level, count, next);
      std::swap(level, next);
      count = groups;
    }
    check(cudaGetLastError(), "tree hash launch");
    uint8_t out[32];
    check(cudaMemcpy(out, level, 32, cudaMemcpyDeviceToHost), "copy root");
    static const char* hex = "0123456789abcdef";
    std::string text;
    for (uint8_t byte : out) {
      text += hex[byte >> 4];
      text += hex[byte & 15];
    }
    return text;
  }
};

struct Step {
  int t, a, b;
};

struct Plan {
  long long id = 0;
  int n = 0;
  ChaChaKey key{};
  std::vector<int> init;
  std::vector<Step> steps;
};

std::string runPlan(Device& device, const Plan& plan) {
  const int n = plan.n;
  const size_t matrixBytes = size_t(n) * n;
  if (n < 64 || n % 64 != 0) throw std::runtime_error("n must be a multiple of 64");
  std::map<int, int8_t*> slots;
  const size_t leaves = matrixBytes / LEAF_BYTES;
  device.reserve(matrixBytes * (plan.init.size() + 1), 32 * (leaves + leaves / FANOUT + 2));
  int8_t* scratch = device.arena + matrixBytes * plan.init.size();
  for (size_t s = 0; s < plan.init.size(); s++) {
    int8_t* slot = device.arena + matrixBytes * s;
    slots[plan.init[s]] = slot;
    uint64_t blocks = matrixBytes / 64;
    chacha_fill<<<unsigned((blocks + 255) / 256), 256>>>(plan.key, 0, uint32_t(plan.init[s]), 0, blocks,
                                                         reinterpret_cast<uint8_t*>(slot));
  }
  check(cudaGetLastError(), "chacha launch");
  std::string roots;
  for (const Step& step : plan.steps) {
    auto a = slots.find(step.a), b = slots.find(step.b);
    if (a == slots.end() || b == slots.end()) throw std::runtime_error("a step uses a matrix the plan never generated");
    device.product(a->second, b->second, scratch, n);
    std::swap(a->second, scratch);
    device.product(b->second, a->second, scratch, n);
    std::swap(b->second, scratch);
    for (int m : {step.a, step.b}) {
      if (!roots.empty()) roots += ",";
      roots += "[" + std::to_string(step.t) + "," + std::to_string(m) + ",\"" + device.root(slots[m], n) + "\"]";
    }
  }
  check(cudaDeviceSynchronize(), "plan");
  return "{\"id\":" + std::to_string(plan.id) + ",\"roots\":[" + roots + "]}";
}

// ---------------------------------------------------------------------------------------
// The request parser: just enough JSON for the agent's plan messages
// ---------------------------------------------------------------------------------------

struct Parser {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) i++;
  }
  void expect(char c) {
    ws();
    if (i >= s.size() || s[i] != c) throw std::runtime_error(std::string("bad request JSON: expected ") + c);
    i++;
  }
  bool peek(char c) {
    ws();
    return i < s.size() && s[i] == c;
  }
  long long number() {
    ws();
    size_t used = 0;
    long long v = std::stoll(s.substr(i, 24), &used);
    i += used;
    return v;
  }
  std::string string() {
    expect('"');
    size_t end = s.find('"', i);
    if (end == std::string::npos) throw std::runtime_error("bad request JSON: unterminated string");
    std::string v = s.substr(i, end - i);
    i = end + 1;
    return v;
  }
  std::vector<long long> numbers() {
    std::vector<long long> v;
    expect('[');
    while (!peek(']')) {
      v.push_back(number());
      if (peek(',')) i++;
    }
    expect(']');
    return v;
  }
};

Plan parsePlan(const std::string& line) {
  Parser p{line};
  Plan plan;
  p.expect('{');
  while (!p.peek('}')) {
    std::string field = p.string();
    p.expect(':');
    if (field == "id") {
      plan.id = p.number();
    } else if (field == "n") {
      plan.n = int(p.number());
    } else if (field == "key") {
      std::string hex = p.string();
      if (hex.size() != 64) throw std::runtime_error("key must be 64 hex digits");
      for (int w = 0; w < 8; w++) {
        uint32_t word = 0;
        for (int byte = 0; byte < 4; byte++) {
          uint32_t v = uint32_t(std::stoul(hex.substr(8 * w + 2 * byte, 2), nullptr, 16));
          word |= v << (8 * byte);  // little-endian words, as RFC 8439 reads the key
        }
        plan.key.k[w] = word;
      }
    } else if (field == "init") {
      for (long long m : p.numbers()) plan.init.push_back(int(m));
    } else if (field == "steps") {
      p.expect('[');
      while (!p.peek(']')) {
        std::vector<long long> s = p.numbers();
        if (s.size() != 3) throw std::runtime_error("a step is [t, a, b]");
        plan.steps.push_back({int(s[0]), int(s[1]), int(s[2])});
        if (p.peek(',')) p.i++;
      }
      p.expect(']');
    } else {
      throw std::runtime_error("unknown field " + field);
    }
    if (p.peek(',')) p.i++;
  }
  return plan;
}

std::string jsonEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

int serve(Device& device) {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    long long id = 0;
    try {
      Plan plan = parsePlan(line);
      id = plan.id;
      std::cout << runPlan(device, plan) << std::endl;
    } catch (const std::exception& error) {
      std::cout << "{\"id\":" << id << ",\"error\":\"" << jsonEscape(error.what()) << "\"}" << std::endl;
    }
  }
  return 0;
}

int list() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::cerr << "no CUDA device" << std::endl;
    return 3;
  }
  std::cout << "[";
  for (int d = 0; d < count; d++) {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, d), "cudaGetDeviceProperties");
    int clock = 0, sms = 0;
    cudaDeviceGetAttribute(&clock, cudaDevAttrClockRate, d);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d);
    char uuid[33];
    for (int i = 0; i < 16; i++) snprintf(uuid + 2 * i, 3, "%02x", static_cast<unsigned char>(prop.uuid.bytes[i]));
    std::cout << (d ? "," : "") << "{\"index\":" << d << ",\"name\":\"" << jsonEscape(prop.name) << "\",\"uuid\":\""
              << uuid << "\",\"memory\":" << prop.totalGlobalMem << ",\"major\":" << prop.major
              << ",\"minor\":" << prop.minor << ",\"processors\":" << sms << ",\"clock_rate\":" << clock << "}";
  }
  std::cout << "]" << std::endl;
  return 0;
}

// ---------------------------------------------------------------------------------------
// bench: our GEMM against the int8 peak and against cuBLASLt, measured in the same run
// ---------------------------------------------------------------------------------------

// The few cuBLASLt entry points the baseline needs, resolved at run time so that neither
// the build nor the agent's image needs cuBLAS (the proof never uses it).
struct CublasLt {
  using Create = int (*)(void**);
  using DescCreate = int (*)(void**, int, cudaDataType_t);
  using DescSet = int (*)(void*, int, const void*, size_t);
  using LayoutCreate = int (*)(void**, cudaDataType_t, uint64_t, uint64_t, int64_t);
  using Matmul = int (*)(void*, void*, const void*, const void*, void*, const void*, void*, const void*, const void*,
                         void*, void*, void*, const void*, void*, size_t, cudaStream_t);
  Create create = nullptr;
  DescCreate descCreate = nullptr;
  DescSet descSet = nullptr;
  LayoutCreate layoutCreate = nullptr;
  Matmul matmul = nullptr;

  bool load() {
    void* lib = nullptr;
    for (const char* name : {"libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.12"}) {
      if ((lib = dlopen(name, RTLD_NOW))) break;
    }
    if (!lib) return false;
    create = reinterpret_cast<Create>(dlsym(lib, "cublasLtCreate"));
    descCreate = reinterpret_cast<DescCreate>(dlsym(lib, "cublasLtMatmulDescCreate"));
    descSet = reinterpret_cast<DescSet>(dlsym(lib, "cublasLtMatmulDescSetAttribute"));
    layoutCreate = reinterpret_cast<LayoutCreate>(dlsym(lib, "cublasLtMatrixLayoutCreate"));
    matmul = reinterpret_cast<Matmul>(dlsym(lib, "cublasLtMatmul"));
    return create && descCreate && descSet && layoutCreate && matmul;
  }
};

// cublasComputeType_t CUBLAS_COMPUTE_32I, cublasLtMatmulDescAttributes_t TRANSA / TRANSB,
// cublasOperation_t CUBLAS_OP_T, from cublas_api.h / cublasLt.h.
constexpr int COMPUTE_32I = 72, DESC_TRANSA = 3, DESC_TRANSB = 4, OP_N = 0, OP_T = 1;

template <typename F>
double timeMs(F&& launch, int reps) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  launch();  // warm-up
  check(cudaEventRecord(start), "event");
  for (int r = 0; r < reps; r++) launch();
  check(cudaEventRecord(stop), "event");
  check(cudaEventSynchronize(stop), "event");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start, stop), "event");
  return double(ms) / reps;
}

double defaultPeak(const std::string& name) {
  if (name.find("H200") != std::string::npos) return 1979;
  if (name.find("H100") != std::string::npos) return name.find("PCIe") != std::string::npos ? 1513 : 1979;
  if (name.find("A100") != std::string::npos) return 624;
  if (name.find("L40S") != std::string::npos) return 733;
  if (name.find("4090") != std::string::npos) return 660;
  return 0;
}

int bench(Device& device, int n, int reps, double peak) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device.index), "cudaGetDeviceProperties");
  if (peak <= 0) peak = defaultPeak(prop.name);
  const size_t bytes = size_t(n) * n;
  int8_t *x, *y, *out;
  int32_t* c32;
  check(cudaMalloc(&x, bytes), "malloc");
  check(cudaMalloc(&y, bytes), "malloc");
  check(cudaMalloc(&out, bytes), "malloc");
  check(cudaMalloc(&c32, 4 * bytes), "malloc");
  ChaChaKey key{};
  chacha_fill<<<unsigned((bytes / 64 + 255) / 256), 256>>>(key, 0, 0, 0, bytes / 64, reinterpret_cast<uint8_t*>(x));
  chacha_fill<<<unsigned((bytes / 64 + 255) / 256), 256>>>(key, 0, 1, 0, bytes / 64, reinterpret_cast<uint8_t*>(y));
  const double ops = 2.0 * n * double(n) * n;
  double oursMs = timeMs([&] { device.product(x, y, out, n); }, reps);
  double fillMs = timeMs(
      [&] {
        chacha_fill<<<unsigned((bytes / 64 + 255) / 256), 256>>>(key, 0, 2, 0, bytes / 64,
                                                                 reinterpret_cast<uint8_t*>(out));
      },
      reps);
  double hashMs = timeMs([&] { device.root(out, n); }, reps);
  std::cout << "device " << prop.name << ", n = " << n << ", int8 dense peak " << peak << " TOPS\n";
  std::cout << "  ours (mma.sync, fold fused): " << oursMs << " ms, " << ops / oursMs / 1e9 << " TOPS";
  if (peak > 0) std::cout << ", " << 100 * ops / oursMs / 1e9 / peak << "% of peak";
  std::cout << "\n  chacha20 fill of one matrix: " << fillMs << " ms; tree hash of one state: " << hashMs << " ms\n";
  CublasLt lt;
  if (!lt.load()) {
    std::cout << "  cuBLASLt: not found (install libcublas to get the baseline)\n";
  } else {
    void *handle = nullptr, *desc = nullptr, *la = nullptr, *lb = nullptr, *lc = nullptr;
    int32_t alpha = 1, beta = 0, opT = OP_T, opN = OP_N;
    lt.create(&handle);
    lt.descCreate(&desc, COMPUTE_32I, CUDA_R_32I);
    lt.descSet(desc, DESC_TRANSA, &opT, sizeof opT);
    lt.descSet(desc, DESC_TRANSB, &opN, sizeof opN);
    lt.layoutCreate(&la, CUDA_R_8I, n, n, n);
    lt.layoutCreate(&lb, CUDA_R_8I, n, n, n);
    lt.layoutCreate(&lc, CUDA_R_32I, n, n, n);
    // Row-major C = X Y^T is column-major C^T = Y X^T: "A" = y transposed, "B" = x.
    int status = 0;
    double ltMs = timeMs(
        [&] {
          status = lt.matmul(handle, desc, &alpha, y, la, x, lb, &beta, c32, lc, c32, lc, nullptr, nullptr, 0, 0);
        },
        reps);
    if (status != 0) {
      std::cout << "  cuBLASLt: matmul failed with status " << status << "\n";
    } else {
      fold_int32<<<unsigned((bytes + 255) / 256), 256>>>(c32, y, bytes);
      std::vector<int8_t> a(bytes), b(bytes);
      check(cudaMemcpy(a.data(), out, bytes, cudaMemcpyDeviceToHost), "copy");
      check(cudaMemcpy(b.data(), y, bytes, cudaMemcpyDeviceToHost), "copy");
      std::cout << "  cuBLASLt int8 (int32 out, no fold): " << ltMs << " ms, " << ops / ltMs / 1e9 << " TOPS";
      if (peak > 0) std::cout << ", " << 100 * ops / ltMs / 1e9 / peak << "% of peak";
      std::cout << "\n  ours / cuBLASLt throughput: " << ltMs / oursMs
                << (a == b ? "; results bit-identical\n" : "; RESULTS DIFFER\n");
    }
  }
  return 0;
}

int argInt(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; i++) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  if (argc < 2) {
    std::cerr << "usage: chutes-gpu-proof list | serve --device N | bench --device N [--n 16384] [--reps 10]\n";
    return 2;
  }
  std::string command = argv[1];
  try {
    if (command == "list") return list();
    Device device;
    device.index = argInt(argc, argv, "--device", 0);
    check(cudaSetDevice(device.index), "cudaSetDevice");
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, device.index), "cudaGetDeviceProperties");
    device.gemm = prop.major >= 8 ? Gemm::Mma : Gemm::Dp4a;
    if (command == "serve") return serve(device);
    if (command == "bench") {
      return bench(device, argInt(argc, argv, "--n", 16384), argInt(argc, argv, "--reps", 10),
                   double(argInt(argc, argv, "--peak-tops", 0)));
    }
  } catch (const std::exception& error) {
    std::cerr << "chutes-gpu-proof: " << error.what() << std::endl;
    return 1;
  }
  std::cerr << "unknown command " << command << std::endl;
  return 2;
}
