# SPDX-License-Identifier: MIT
# Probe benchmarks (included from bench/CMakeLists.txt). Run them all with bench/run.sh.
#   bench_probe_bytes       per file: bytes the probe read, file size, time (for probe_vs_ffprobe.sh)
#   bench_probe_throughput  files per second through the library, 1 and 2 threads, beside
#                           plain libavformat (open + find_stream_info) over the same files
add_executable(bench_probe_bytes ${CMAKE_CURRENT_LIST_DIR}/bench_probe_bytes.c)
target_link_libraries(bench_probe_bytes PRIVATE cm_probe)

add_executable(bench_probe_throughput ${CMAKE_CURRENT_LIST_DIR}/bench_probe_throughput.c)
target_link_libraries(bench_probe_throughput PRIVATE cm_probe PkgConfig::LIBAV Threads::Threads)
target_compile_definitions(bench_probe_throughput PRIVATE
  CM_SAMPLES_DIR="${PROJECT_SOURCE_DIR}/samples")
