// Access to a JS `UNet` object's model from other bindings (e.g. a native sampler loop that calls
// the U-Net itself). The object is recognised by its N-API type tag, never by shape.
#pragma once
#include <napi.h>

#include <memory>

#include "models/unet.h"

namespace nd::addon {

// The model behind a JS UNet; ERR_INVALID_ARGUMENT naming `name` if v is not one, ERR_DISPOSED
// after dispose(). The shared pointer keeps the model alive while the caller uses it.
std::shared_ptr<UNet> unet_from_js(const Napi::Value& v, const char* name);

}  // namespace nd::addon
