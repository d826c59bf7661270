// The workspace bump allocator behind Vec (lowbit/graph.h) and lowbit_model_load_static.
#include <new>

#include "lowbit/graph.h"

namespace lowbit {
namespace {

thread_local WorkspaceArena* g_arena = nullptr;

// Every Vec block carries a 16-byte header in front: where it came from. 16 bytes keep the
// payload aligned for every element type the graph uses, on 32- and 64-bit targets alike.
constexpr uint64_t kHeader = 16;
constexpr uint32_t kFromHeap = 0x48454150u, kFromArena = 0x41524e41u;

}  // namespace

WorkspaceArena* install_workspace_arena(WorkspaceArena* arena) {
  WorkspaceArena* old = g_arena;
  g_arena = arena;
  return old;
}

WorkspaceArena* current_workspace_arena() { return g_arena; }

void* workspace_take(uint64_t bytes, uint64_t align) {
  WorkspaceArena* a = g_arena;
  if (!a) return nullptr;
  // Offsets are aligned relative to the base, which lowbit_model_load_static requires to be
  // 64-byte aligned, so the need does not depend on where the workspace happens to sit.
  const uint64_t start = (a->used + align - 1) / align * align;
  a->used = start + bytes;
  if (a->overflowed || !a->base || a->used > a->size) {
    a->overflowed = true;
    return nullptr;
  }
  return a->base + start;
}

void* graph_allocate(size_t bytes) {
  if (g_arena) {
    if (void* p = workspace_take(kHeader + bytes, kHeader)) {
      *static_cast<uint32_t*>(p) = kFromArena;
      return static_cast<uint8_t*>(p) + kHeader;
    }
  }
  // Without exceptions, running out of heap here terminates (as std::allocator would).
  void* p = ::operator new(static_cast<size_t>(kHeader + bytes));
  *static_cast<uint32_t*>(p) = kFromHeap;
  return static_cast<uint8_t*>(p) + kHeader;
}

void graph_deallocate(void* p) noexcept {
  if (!p) return;
  uint8_t* block = static_cast<uint8_t*>(p) - kHeader;
  if (*reinterpret_cast<uint32_t*>(block) == kFromHeap) ::operator delete(block);
  // Arena blocks are released with the whole workspace.
}

}  // namespace lowbit
