# Three targets: the engine as a static library (core, backend, cpu, nn, models), the shipped addon
# (native/addon) and the development addon (native/dev: test and bench bindings). The dev addon's file ends in
# .devnode, so prebuild tools and loaders that take *.node files never ship or load it;
# lib/native/load.ts loadDevBinding() opens it with process.dlopen. tools/sources.cjs lists the sources.
{
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions", "-O2"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2"],
    "cflags": ["-O3", "-fexceptions", "-fPIC"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fno-math-errno", "-fvisibility=hidden", "-pthread"],
    "ldflags": ["-pthread"],
    # macOS (not buildable on this project's Linux machines, untested): C++17 and aligned_alloc need 10.15.
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "GCC_ENABLE_CPP_RTTI": "YES",
      "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "CLANG_CXX_LIBRARY": "libc++",
      "MACOSX_DEPLOYMENT_TARGET": "10.15",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"]
    },
    # Windows with MSVC is untested: the published win32-x64 binary is cross-built with mingw-w64
    # (tools/cross-build.mjs); these are the settings a Visual Studio source build would need.
    "conditions": [
      # libstdc++ linked in: the binary then needs glibc >= 2.34 only (see native/core/glibc_compat.cc).
      ["OS=='linux'", {"ldflags": ["-static-libstdc++"]}],
      ["OS=='win'", {
        "msvs_settings": {
          "VCCLCompilerTool": {
            "ExceptionHandling": 1,
            "RuntimeTypeInfo": "true",
            "AdditionalOptions": ["/std:c++17", "/O2", "/utf-8"]
          }
        }
      }]
    ]
  },
  "targets": [
    {
      "target_name": "native_diffusion_lib",
      "type": "static_library",
      "sources": ["<!@(node tools/sources.cjs lib)"]
    },
    {
      "target_name": "native_diffusion",
      "sources": ["<!@(node tools/sources.cjs addon)"],
      "dependencies": ["native_diffusion_lib"]
    },
    {
      "target_name": "native_diffusion_dev",
      "target_conditions": [["_type=='loadable_module'", {"product_extension": "devnode"}]],
      "sources": ["<!@(node tools/sources.cjs dev)"],
      "dependencies": ["native_diffusion_lib"]
    }
  ]
}
