"""llama-cpp-python's OpenAI-compatible server, started by reverie for the embedded model.

ggml's extra buffer types (AMX kernels, weight repacking) are turned off before the model loads: on
a CPU that advertises AMX the first completion crashes the server (SIGSEGV in
ggml_backend_amx_mul_mat, seen with llama-cpp-python 0.3.36 on a Xeon VM) and every cycle lost its
analyst. Without them SmolLM2-135M still reads ~300 prompt tokens a second on 2 cores.
"""

from __future__ import annotations

import llama_cpp.llama as llama_module


def _without_extra_buffers(default=llama_module.llama_cpp.llama_model_default_params):
    params = default()
    params.use_extra_bufts = False
    return params


if __name__ == "__main__":
    llama_module.llama_cpp.llama_model_default_params = _without_extra_buffers
    from llama_cpp.server.__main__ import main

    main()
