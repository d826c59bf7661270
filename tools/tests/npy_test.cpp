#include <gtest/gtest.h>

#include <fstream>

#include "npy.h"

namespace {

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/" + name; }

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(Npy, RoundTripKeepsShapeAndValues) {
  lowbit::NpyArray a;
  a.shape = {2, 3, 1};
  a.values = {1.5f, -2.0f, 0.0f, 3.25f, 1e-7f, -1e9f};
  std::string error;
  const std::string path = temp_path("round_trip.npy");
  ASSERT_TRUE(lowbit::write_npy(path, a, &error)) << error;
  lowbit::NpyArray b;
  ASSERT_TRUE(lowbit::read_npy(path, &b, &error)) << error;
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.values, a.values);
}

TEST(Npy, OneDimensionalShapeUsesTupleComma) {
  lowbit::NpyArray a;
  a.shape = {4};
  a.values = {1, 2, 3, 4};
  std::string error;
  const std::string path = temp_path("one_d.npy");
  ASSERT_TRUE(lowbit::write_npy(path, a, &error)) << error;
  std::ifstream f(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("'shape': (4,)"), std::string::npos);
  EXPECT_EQ((bytes.find('\n') + 1) % 64, 0u) << "data must start 64-byte aligned";
}

TEST(Npy, RejectsBadFilesWithTheirName) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  auto npy = [](const std::string& dict, const std::string& data) {
    std::string h = dict;
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    std::string b = std::string("\x93NUMPY\x01\x00", 8);
    b += static_cast<char>(h.size() & 0xFF);
    b += static_cast<char>(h.size() >> 8);
    return b + h + data;
  };
  const struct {
    const char* name;
    std::string bytes;
    const char* expect;
  } cases[] = {
      {"empty.npy", "", "bad magic"},
      {"magic.npy", "NOTNUMPY and more bytes", "bad magic"},
      {"short.npy", npy(header, std::string(4, '\0')), "needs 8"},
      {"dtype.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')), "dtype"},
      {"fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", std::string(8, '\0')), "Fortran"},
      {"shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }", std::string(8, '\0')), "shape"},
      {"header.npy", std::string("\x93NUMPY\x01\x00\xff\x7f", 10), "truncated"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = temp_path(c.name);
    write_raw(path, c.bytes);
    lowbit::NpyArray a;
    std::string error;
    EXPECT_FALSE(lowbit::read_npy(path, &a, &error));
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find(c.expect), std::string::npos) << error;
  }
  lowbit::NpyArray a;
  std::string error;
  EXPECT_FALSE(lowbit::read_npy(temp_path("missing.npy"), &a, &error));
  EXPECT_NE(error.find("cannot open"), std::string::npos);
}

TEST(Npy, ReadsFloat64AsFloat32) {
  std::string h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string b = std::string("\x93NUMPY\x01\x00", 8);
  b += static_cast<char>(h.size());
  b += '\0';
  const double v[2] = {0.5, -3.0};
  b += h + std::string(reinterpret_cast<const char*>(v), sizeof(v));
  const std::string path = temp_path("f8.npy");
  write_raw(path, b);
  lowbit::NpyArray a;
  std::string error;
  ASSERT_TRUE(lowbit::read_npy(path, &a, &error)) << error;
  EXPECT_EQ(a.values, (std::vector<float>{0.5f, -3.0f}));
}

}  // namespace
