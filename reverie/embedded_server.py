"""llama-cpp-python's OpenAI-compatible server, started by reverie for the embedded model.

ggml's extra buffer types (AMX kernels, weight repacking) are turned off before the model loads: on
a CPU that advertises AMX the first completion crashes the server (SIGSEGV in
ggml_backend_amx_mul_mat, seen with llama-cpp-python 0.3.36 on a Xeon VM) and every cycle lost its
analyst. Without them SmolLM2-135M still reads ~300 prompt tokens a second on 2 cores.

It serves on the socket reverie hands it, already listening (its descriptor in LISTENING_FD), not on
a port it binds itself: a free port chosen by one process can be taken by another before it is bound.
"""

from __future__ import annotations

import functools
import os

LISTENING_FD = "REVERIE_EMBEDDED_LISTENING_FD"


def main() -> None:
    import llama_cpp.llama as llama_module
    import uvicorn
    from llama_cpp.server.__main__ import main as serve

    default = llama_module.llama_cpp.llama_model_default_params

    def without_extra_buffers():
        params = default()
        params.use_extra_bufts = False
        return params

    llama_module.llama_cpp.llama_model_default_params = without_extra_buffers
    uvicorn.run = functools.partial(uvicorn.run, fd=int(os.environ.pop(LISTENING_FD)))
    serve()


if __name__ == "__main__":
    main()
