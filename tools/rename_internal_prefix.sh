#!/usr/bin/env bash
# Gives the engine's internal identifiers a prefix of their own: gs_ is the
# public API's (include/gesso.h), and internals that share it read as public,
# could collide with a later public name, and make "every exported symbol
# starts with gs_" a weaker check than it looks. Internals become gi_.
#
# Each old name is replaced as a whole word (so gs_error_prefix is not touched
# by gs_error, nor gs_f16_to_f32_fast by gs_f16_to_f32) in every text file
# under src/, tests/ and bench/ that mentions it. gs_ -> gi_ keeps every
# name's length, so no line is reflowed. Idempotent: a second run finds no old
# name and changes nothing. It stops before writing anything if a new name is
# already in use, or if a public name of gesso.h is in the list.
#
# usage: tools/rename_internal_prefix.sh [REPO_ROOT]   (default: this checkout)
set -euo pipefail
root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$root"
dirs=(src tests bench)

# old new: the gs_ identifiers of src/ that include/gesso.h does not declare
# (functions, types, asm labels and one section name), as of the merge.
map=(
  gs_aligned_alloc gi_aligned_alloc
  gs_aligned_free gi_aligned_free
  gs_alloc_fail_after gi_alloc_fail_after
  gs_bf16_to_f32 gi_bf16_to_f32
  gs_bits_to_f32 gi_bits_to_f32
  gs_calloc gi_calloc
  gs_clip_vocab gi_clip_vocab
  gs_clip_vocab_gz_begin gi_clip_vocab_gz_begin
  gs_clip_vocab_gz_end gi_clip_vocab_gz_end
  gs_compute gi_compute
  gs_erfc_nonneg gi_erfc_nonneg
  gs_error gi_error
  gs_error_clear gi_error_clear
  gs_error_prefix gi_error_prefix
  gs_expf gi_expf
  gs_f16_to_f32 gi_f16_to_f32
  gs_f16_to_f32_fast gi_f16_to_f32_fast
  gs_f32_to_bf16 gi_f32_to_bf16
  gs_f32_to_bits gi_f32_to_bits
  gs_f32_to_f16 gi_f32_to_f16
  gs_fail gi_fail
  gs_free gi_free
  gs_gelu gi_gelu
  gs_huge_alloc gi_huge_alloc
  gs_malloc gi_malloc
  gs_mul_overflows gi_mul_overflows
  gs_pages_alloc gi_pages_alloc
  gs_pages_free gi_pages_free
  gs_realloc gi_realloc
  gs_rng gi_rng
  gs_silu gi_silu
  gs_strdup gi_strdup
)

# text files (grep -I skips binary fixtures) under dirs mentioning pattern
files_with() {
  grep -rlIE "$1" "${dirs[@]}" 2>/dev/null || true
}

public=$(grep -oE '\bgs_[A-Za-z0-9_]+' include/gesso.h | sort -u)
olds=() news=()
for ((i = 0; i < ${#map[@]}; i += 2)); do
  olds+=("${map[i]}")
  news+=("${map[i + 1]}")
done

for ((i = 0; i < ${#olds[@]}; i++)); do
  old=${olds[i]} new=${news[i]}
  if grep -qx "$old" <<<"$public"; then
    echo "rename: $old is public (include/gesso.h); not renaming anything" >&2
    exit 1
  fi
  # a new name already there is only ours if the old one is gone (a rerun);
  # both at once means something else took the name
  if [ -n "$(files_with "\\b$old\\b")" ] && [ -n "$(files_with "\\b$new\\b")" ]; then
    echo "rename: $new is already used while $old is still there; not renaming anything" >&2
    files_with "\\b$new\\b" | sed 's/^/  /' >&2
    exit 1
  fi
done

changed=0
for ((i = 0; i < ${#olds[@]}; i++)); do
  old=${olds[i]} new=${news[i]}
  mapfile -t hits < <(files_with "\\b$old\\b")
  [ ${#hits[@]} -gt 0 ] || continue
  sed -i -E "s/\\b$old\\b/$new/g" "${hits[@]}"
  echo "rename: $old -> $new in ${#hits[@]} files"
  changed=$((changed + ${#hits[@]}))
done

# what is left: gs_ identifiers in the code that the public header does not declare
left=$(comm -23 <(grep -rhoIE '\bgs_[A-Za-z0-9_]+' "${dirs[@]}" | sort -u) <(echo "$public"))
if [ -n "$left" ]; then
  echo "rename: gs_ identifiers not in include/gesso.h remain (add them to the map):" >&2
  echo "$left" | sed 's/^/  /' >&2
  exit 1
fi
if [ $changed -eq 0 ]; then
  echo "rename: nothing to do; every gs_ identifier under ${dirs[*]} is public"
else
  echo "rename: done ($changed file edits); build, run the tests, and commit"
fi
