// Control of the compile-fail pair: a custom mask policy written with the long form of the tile
// contract (visible + classify + runs). It must compile; if it does not, the harness is broken
// and compile.policy_missing_runs proves nothing.
#include <trimix/mask.hpp>

namespace {

/// Keys in the first kv-tile only.
struct FirstTileOnly {
  trimix::index_t tile = 64;

  TRIMIX_FUNCTION bool visible(trimix::index_t, trimix::index_t j, trimix::index_t) const {
    return j < tile;
  }
  TRIMIX_FUNCTION trimix::TileClass classify(const trimix::TileGeometry& g, trimix::index_t,
                                             trimix::index_t u) const {
    if (g.first_key(u) >= tile) return trimix::TileClass::empty;
    return g.last_key(u) < tile ? trimix::TileClass::full : trimix::TileClass::partial;
  }
  /// Cursor over one run: kv-tiles [0, end).
  struct Runs {
    trimix::KvRun run;
    bool done = false;
    TRIMIX_FUNCTION bool next(trimix::KvRun& out) {
      if (done) return false;
      out = run;
      done = true;
      return true;
    }
  };
  TRIMIX_FUNCTION Runs runs(const trimix::TileGeometry& g, trimix::index_t) const {
    const trimix::index_t end = (tile + g.kv_tile - 1) / g.kv_tile;
    return Runs{trimix::KvRun{0, end < g.kv_tiles() ? end : g.kv_tiles(), trimix::TileClass::partial},
                g.seq_k == 0};
  }
};

}  // namespace

static_assert(trimix::check_mask_policy<FirstTileOnly>());
static_assert(trimix::is_mask_policy_v<FirstTileOnly>);
