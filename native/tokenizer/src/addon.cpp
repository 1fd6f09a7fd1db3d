// Node-API bindings of the encoder (loaded by src/tokenize/nativeAddon.ts). Plain C Node-API, so
// one build serves every Node version from 18 on. Ids are written straight into the caller's
// typed arrays; a whole block of jsonl lines is handled per call, so the per-document cost of
// crossing into C++ is one loop iteration.
#define NAPI_VERSION 8
#include <node_api.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "encoder.h"
#include "json_line.h"

namespace {

using flametok::Encoder;
using flametok::EncoderConfig;
using flametok::JsonLineScanner;

// Bumped whenever the JavaScript-facing interface changes; nativeAddon.ts refuses other values.
constexpr uint32_t kApiVersion = 1;

const napi_type_tag kEncoderTag = {0x6a1c0e5d9b2f4c31ull, 0x8d7e2a4b1f3c5e60ull};

struct Instance {
  explicit Instance(EncoderConfig config) : encoder(std::move(config)) {}
  Encoder encoder;
  JsonLineScanner scanner;
  std::string utf8;
  std::string key;
};

// Thrown (as a JavaScript TypeError) for arguments the TypeScript wrapper never passes.
struct ArgumentError {
  std::string message;
};

struct Status {
  napi_env env;
  void operator<<(napi_status status) const {
    if (status != napi_ok) {
      const napi_extended_error_info* info = nullptr;
      napi_get_last_error_info(env, &info);
      throw ArgumentError{info != nullptr && info->error_message != nullptr ? info->error_message : "Node-API call failed"};
    }
  }
};

napi_value property(napi_env env, napi_value object, const char* name) {
  napi_value value;
  Status{env} << napi_get_named_property(env, object, name, &value);
  return value;
}

bool to_bool(napi_env env, napi_value value) {
  bool b = false;
  Status{env} << napi_get_value_bool(env, value, &b);
  return b;
}

uint32_t to_uint32(napi_env env, napi_value value) {
  uint32_t u = 0;
  Status{env} << napi_get_value_uint32(env, value, &u);
  return u;
}

void to_string(napi_env env, napi_value value, std::string& out) {
  size_t length = 0;
  Status{env} << napi_get_value_string_utf8(env, value, nullptr, 0, &length);
  out.resize(length + 1);
  Status{env} << napi_get_value_string_utf8(env, value, out.data(), length + 1, &length);
  out.resize(length);
}

template <typename T>
struct Typed {
  T* data = nullptr;
  size_t length = 0;
};

template <typename T>
Typed<T> typed_array(napi_env env, napi_value value, napi_typedarray_type expected, const char* what) {
  bool is_typed = false;
  Status{env} << napi_is_typedarray(env, value, &is_typed);
  if (!is_typed) throw ArgumentError{std::string(what) + ": expected a typed array"};
  napi_typedarray_type type;
  size_t length;
  void* data;
  Status{env} << napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr);
  if (type != expected) throw ArgumentError{std::string(what) + ": wrong typed array type"};
  return Typed<T>{static_cast<T*>(data), length};
}

std::vector<std::pair<std::string, uint32_t>> token_list(napi_env env, napi_value contents, napi_value ids) {
  const Typed<uint32_t> id = typed_array<uint32_t>(env, ids, napi_uint32_array, "added token ids");
  uint32_t n = 0;
  Status{env} << napi_get_array_length(env, contents, &n);
  if (n != id.length) throw ArgumentError{"added tokens: contents and ids differ in length"};
  std::vector<std::pair<std::string, uint32_t>> out;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    Status{env} << napi_get_element(env, contents, i, &item);
    std::string s;
    to_string(env, item, s);
    out.emplace_back(std::move(s), id.data[i]);
  }
  return out;
}

Instance* instance(napi_env env, napi_value value) {
  bool tagged = false;
  Status{env} << napi_check_object_type_tag(env, value, &kEncoderTag, &tagged);
  if (!tagged) throw ArgumentError{"expected an encoder made by createEncoder"};
  void* data = nullptr;
  Status{env} << napi_get_value_external(env, value, &data);
  return static_cast<Instance*>(data);
}

template <size_t N>
void arguments(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;
  Status{env} << napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != N) throw ArgumentError{"wrong number of arguments"};
}

napi_value number(napi_env env, double value) {
  napi_value out;
  Status{env} << napi_create_double(env, value, &out);
  return out;
}

// Runs a binding body, turning C++ failures into JavaScript exceptions.
template <typename F>
napi_value guarded(napi_env env, F&& body) {
  try {
    return body();
  } catch (const ArgumentError& e) {
    napi_throw_type_error(env, nullptr, e.message.c_str());
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, nullptr, "native tokenizer: out of memory");
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("native tokenizer: ") + e.what()).c_str());
  }
  return nullptr;
}

// createEncoder(config): see EncoderConfig and NativeEncoderConfig in nativeAddon.ts.
napi_value create_encoder(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    napi_value argv[1];
    arguments(env, info, argv);
    const napi_value c = argv[0];
    EncoderConfig config;
    const auto classes = typed_array<uint8_t>(env, property(env, c, "classes"), napi_uint8_array, "classes");
    if (classes.length != flametok::kCodePoints) throw ArgumentError{"classes: expected 0x110000 entries"};
    config.classes.assign(classes.data, classes.data + classes.length);
    const auto byte_ids = typed_array<int32_t>(env, property(env, c, "byteIds"), napi_int32_array, "byteIds");
    if (byte_ids.length != 256) throw ArgumentError{"byteIds: expected 256 entries"};
    std::memcpy(config.byte_ids, byte_ids.data, sizeof(config.byte_ids));
    const auto merges = typed_array<int32_t>(env, property(env, c, "merges"), napi_int32_array, "merges");
    if (merges.length % 3 != 0) throw ArgumentError{"merges: expected (left, right, merged) triples"};
    config.merges.assign(merges.data, merges.data + merges.length);
    config.raw_added = token_list(env, property(env, c, "rawAdded"), property(env, c, "rawAddedIds"));
    config.normalized_added =
        token_list(env, property(env, c, "normalizedAdded"), property(env, c, "normalizedAddedIds"));
    const auto whole = typed_array<uint8_t>(env, property(env, c, "wholeTokenBytes"), napi_uint8_array, "wholeTokenBytes");
    const auto ends = typed_array<uint32_t>(env, property(env, c, "wholeTokenEnds"), napi_uint32_array, "wholeTokenEnds");
    const auto whole_ids = typed_array<uint32_t>(env, property(env, c, "wholeTokenIds"), napi_uint32_array, "wholeTokenIds");
    if (ends.length != whole_ids.length) throw ArgumentError{"wholeTokenEnds and wholeTokenIds differ in length"};
    size_t from = 0;
    for (size_t i = 0; i < ends.length; i++) {
      if (ends.data[i] < from || ends.data[i] > whole.length) throw ArgumentError{"wholeTokenEnds out of range"};
      config.whole_tokens.emplace_back(std::string(reinterpret_cast<const char*>(whole.data) + from, ends.data[i] - from),
                                       whole_ids.data[i]);
      from = ends.data[i];
    }
    const auto prefix = typed_array<uint32_t>(env, property(env, c, "prefix"), napi_uint32_array, "prefix");
    const auto suffix = typed_array<uint32_t>(env, property(env, c, "suffix"), napi_uint32_array, "suffix");
    config.prefix.assign(prefix.data, prefix.data + prefix.length);
    config.suffix.assign(suffix.data, suffix.data + suffix.length);
    config.add_prefix_space = to_bool(env, property(env, c, "addPrefixSpace"));
    config.use_regex = to_bool(env, property(env, c, "useRegex"));
    config.ignore_merges = to_bool(env, property(env, c, "ignoreMerges"));
    const uint32_t normalization = to_uint32(env, property(env, c, "normalization"));
    if (normalization > 2) throw ArgumentError{"normalization: expected 0, 1 or 2"};
    config.normalization = static_cast<flametok::Normalization>(normalization);
    config.eod = to_uint32(env, property(env, c, "eod"));

    auto owned = std::make_unique<Instance>(std::move(config));
    napi_value external;
    Status{env} << napi_create_external(
        env, owned.get(),
        [](napi_env env, void* data, void*) {
          auto* self = static_cast<Instance*>(data);
          int64_t remaining;
          napi_adjust_external_memory(env, -int64_t(self->encoder.memory_bytes()), &remaining);
          delete self;
        },
        nullptr, &external);
    Instance* self = owned.release();
    // The encoder's tables (about 10 MB) are invisible to V8 unless it is told: without this,
    // garbage encoders would be collected too late.
    int64_t total;
    Status{env} << napi_adjust_external_memory(env, int64_t(self->encoder.memory_bytes()), &total);
    Status{env} << napi_type_tag_object(env, external, &kEncoderTag);
    return external;
  });
}

// encodeText(encoder, text, out, at): appends the ids of `text` (added tokens, pre-tokenizer,
// BPE) to out[at..]. Returns the new length; -1 when the text needs normalizing first; -n (n > 1)
// when `out` needs room for n ids.
napi_value encode_text(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    napi_value argv[4];
    arguments(env, info, argv);
    Instance* self = instance(env, argv[0]);
    to_string(env, argv[1], self->utf8);
    const auto out = typed_array<uint32_t>(env, argv[2], napi_uint32_array, "out");
    const size_t at = to_uint32(env, argv[3]);
    const auto* s = reinterpret_cast<const uint8_t*>(self->utf8.data());
    const size_t n = self->utf8.size();
    if (!self->encoder.normalization_is_identity(s, n)) return number(env, -1);
    const size_t needed = at + self->encoder.max_ids(n);
    if (needed > out.length) return number(env, -double(needed));
    return number(env, double(at + self->encoder.encode_text(s, n, out.data + at)));
  });
}

// encodeNormalized(encoder, text, out, at): the same for a normalized segment without added
// tokens (pre-tokenizer and BPE only). Returns the new length, or -n when `out` needs n ids.
napi_value encode_normalized(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    napi_value argv[4];
    arguments(env, info, argv);
    Instance* self = instance(env, argv[0]);
    to_string(env, argv[1], self->utf8);
    const auto out = typed_array<uint32_t>(env, argv[2], napi_uint32_array, "out");
    const size_t at = to_uint32(env, argv[3]);
    const auto* s = reinterpret_cast<const uint8_t*>(self->utf8.data());
    const size_t n = self->utf8.size();
    const size_t needed = at + self->encoder.max_ids(n);
    if (needed > out.length) return number(env, -double(needed));
    return number(env, double(at + self->encoder.encode_normalized(s, n, out.data + at)));
  });
}

// encodeLines(encoder, block, start, key, ids, lines): the jsonl lines of block[start..] (valid
// UTF-8), one per '\n' (the last may lack it). For line k, lines[2k] is the offset of its end
// and lines[2k+1] the number of ids it added to `ids` (template, text, EOD when non-empty), or -1
// when the line is left to the caller. Stops when `lines` is full or `ids` might not hold the
// next line; returns the number of lines done.
napi_value encode_lines(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    napi_value argv[6];
    arguments(env, info, argv);
    Instance* self = instance(env, argv[0]);
    const auto block = typed_array<uint8_t>(env, argv[1], napi_uint8_array, "block");
    size_t pos = to_uint32(env, argv[2]);
    to_string(env, argv[3], self->key);
    const auto ids = typed_array<uint32_t>(env, argv[4], napi_uint32_array, "ids");
    const auto lines = typed_array<int32_t>(env, argv[5], napi_int32_array, "lines");
    if (block.length > 0x7fffffff) throw ArgumentError{"block: at most 2 GiB"};
    const size_t end = block.length;
    const size_t max_lines = lines.length / 2;
    size_t done = 0;
    size_t used = 0;
    while (pos < end && done < max_lines) {
      const void* nl = std::memchr(block.data + pos, '\n', end - pos);
      const size_t line_end = nl == nullptr ? end : size_t(static_cast<const uint8_t*>(nl) - block.data);
      const size_t length = line_end - pos;
      // The unescaped text is never longer than the line.
      if (used + self->encoder.max_ids(length) > ids.length) break;
      const uint8_t* text;
      size_t text_length;
      int32_t count = -1;
      if (self->scanner.find_text(block.data + pos, length, self->key, text, text_length) &&
          self->encoder.normalization_is_identity(text, text_length)) {
        const size_t n = self->encoder.encode_document(text, text_length, ids.data + used);
        used += n;
        count = int32_t(n);
      }
      lines.data[2 * done] = int32_t(line_end);
      lines.data[2 * done + 1] = count;
      done++;
      pos = line_end + 1;
    }
    return number(env, double(done));
  });
}

napi_value init(napi_env env, napi_value exports) {
  return guarded(env, [&] {
    const napi_property_descriptor properties[] = {
        {"createEncoder", nullptr, create_encoder, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
        {"encodeText", nullptr, encode_text, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
        {"encodeNormalized", nullptr, encode_normalized, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
        {"encodeLines", nullptr, encode_lines, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
        {"apiVersion", nullptr, nullptr, nullptr, nullptr, number(env, kApiVersion), napi_enumerable, nullptr},
    };
    Status{env} << napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
    return exports;
  });
}

}  // namespace

NAPI_MODULE_INIT() { return init(env, exports); }
