# brasyn: synthesize the missing brain MRI sequence (BraSyn). One image serves MLCube, MedPerf and
# plain Docker:
#   docker run --gpus all -v DATA:/input:ro -v OUT:/output IMAGE          (reads /input/<case>/, writes /output/<case>-<missing>.nii.gz)
#   docker run ... IMAGE infer --data_path=... --parameters_file=... --weights=... --output_path=...   (MLCube / MedPerf)
# Runs as any uid (files are world-readable, HOME=/tmp) and needs no network at run time.
# A slim Python base with a CUDA build of the torch release the tests run (constraints.txt): the build
# bundles its CUDA libraries, so a GPU host needs only the NVIDIA driver and `--gpus`. Which build is a
# build argument, because no single build serves every GPU host (support matrix: mlcube/README.md):
#   TORCH_CUDA=pypi   (default) PyPI's wheel, CUDA 13.0: compute capability 7.5-12.0 (T4, A10, A100,
#                     L4, H100/H200, Blackwell), NVIDIA driver R580 or newer
#   TORCH_CUDA=cu126  PyTorch's CUDA 12.6 build: 5.0-9.0 (P100, V100 and every GPU up to H100/H200),
#                     driver R525 or newer; not Blackwell
#   docker build --build-arg TORCH_CUDA=cu126 -t IMAGE .   (or `make docker-build TORCH_CUDA=cu126`)

# The entrypoint and the workspace defaults, made world-readable in a stage of their own: the final
# image copies them once (a chmod there would store the weights again in a new layer).
FROM python:3.12-slim-bookworm AS workspace
COPY project/mlcube.py /mlcube_project/mlcube.py
COPY workspace/parameters.yaml /mlcube_project/workspace/parameters.yaml
COPY workspace/additional_files/ /mlcube_project/workspace/additional_files/
RUN chmod -R a+rX /mlcube_project

FROM python:3.12-slim-bookworm
ARG TORCH_CUDA=pypi

ENV HOME=/tmp \
    BRASYN_WEIGHTS=/mlcube_project/workspace/additional_files \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /mlcube_project

# Dependencies first (layer cache): the package's requirements from pyproject.toml, torch included, at
# the versions the tests run (constraints.txt, which the Makefile's test venv is installed with too).
# With TORCH_CUDA other than pypi, torch (same version) comes from PyTorch's index for that CUDA build
# first; its local version (2.13.0+cu126) satisfies the constraint, so the second install keeps it.
COPY pyproject.toml constraints.txt /tmp/build/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/build/requirements.txt \
    && if [ "$TORCH_CUDA" != pypi ]; then \
        pip install --no-cache-dir --index-url "https://download.pytorch.org/whl/$TORCH_CUDA" \
            "$(grep -m1 -o '^torch==[^ ;]*' /tmp/build/constraints.txt)"; \
    fi \
    && pip install --no-cache-dir -c /tmp/build/constraints.txt -r /tmp/build/requirements.txt \
    && python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'archs', \
        getattr(torch._C, '_cuda_getArchFlags', lambda: '')())"

# The package itself (non-editable), then the entrypoint and the workspace defaults it looks for
# next to itself (/mlcube_project/workspace/{parameters.yaml,additional_files/}), from the first stage.
COPY README.md /tmp/build/README.md
COPY project/brasyn /tmp/build/project/brasyn
RUN pip install --no-cache-dir --no-deps /tmp/build \
    && rm -rf /tmp/build \
    && python3 -c "import brasyn.inference"

COPY --from=workspace /mlcube_project/ /mlcube_project/

ENTRYPOINT ["python3", "/mlcube_project/mlcube.py"]
CMD ["infer", "--data_path=/input", "--output_path=/output"]
