# brasyn: synthesize the missing brain MRI sequence (BraSyn). One image serves MLCube, MedPerf and
# plain Docker:
#   docker run --gpus all -v DATA:/input:ro -v OUT:/output IMAGE          (reads /input/<case>/, writes /output/<case>-<missing>.nii.gz)
#   docker run ... IMAGE infer --data_path=... --parameters_file=... --weights=... --output_path=...   (MLCube / MedPerf)
# Runs as any uid (files are world-readable, HOME=/tmp) and needs no network at run time.
# A slim Python base with PyPI's torch wheel, whose Linux build bundles CUDA (a GPU host needs only the
# NVIDIA driver and `--gpus`): no CUDA PyTorch base image ships the torch release the tests run.
FROM python:3.12-slim-bookworm

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
COPY pyproject.toml constraints.txt /tmp/build/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/build/requirements.txt \
    && pip install --no-cache-dir -c /tmp/build/constraints.txt -r /tmp/build/requirements.txt \
    && python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"

# The package itself (non-editable), then the entrypoint and the workspace defaults it looks for
# next to itself: /mlcube_project/workspace/{parameters.yaml,additional_files/}.
COPY README.md /tmp/build/README.md
COPY project/brasyn /tmp/build/project/brasyn
RUN pip install --no-cache-dir --no-deps /tmp/build \
    && rm -rf /tmp/build \
    && python3 -c "import brasyn.inference"

COPY project/mlcube.py /mlcube_project/mlcube.py
COPY workspace/parameters.yaml /mlcube_project/workspace/parameters.yaml
COPY workspace/additional_files/ /mlcube_project/workspace/additional_files/
RUN chmod -R a+rX /mlcube_project

ENTRYPOINT ["python3", "/mlcube_project/mlcube.py"]
CMD ["infer", "--data_path=/input", "--output_path=/output"]
