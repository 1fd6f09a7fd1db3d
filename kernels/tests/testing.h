// Minimal test harness: CHECK(cond) records failures, main returns non-zero if any.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
static int g_failures = 0, g_checks = 0;
#define CHECK(cond, ...) do { g_checks++; if (!(cond)) { g_failures++; fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)
#define TEST_MAIN_END() do { printf("%d checks, %d failures\n", g_checks, g_failures); return g_failures ? 1 : 0; } while (0)
