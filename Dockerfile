# brasyn: synthesize the missing brain MRI sequence (BraSyn). One image serves MLCube, MedPerf and
# plain Docker:
#   docker run --gpus all -v DATA:/input:ro -v OUT:/output IMAGE          (reads /input/<case>/, writes /output/<case>-<missing>.nii.gz)
#   docker run ... IMAGE infer --data_path=... --parameters_file=... --weights=... --output_path=...   (MLCube / MedPerf)
# Runs as any uid (files are world-readable, HOME=/tmp) and needs no network at run time.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV HOME=/tmp \
    BRASYN_WEIGHTS=/mlcube_project/workspace/additional_files \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /mlcube_project

# Dependencies first (layer cache): the package's requirements from pyproject.toml, minus torch,
# which the CUDA base image already provides.
COPY pyproject.toml /tmp/build/pyproject.toml
RUN python3 -c "import tomllib; deps = tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.replace(' ', '').startswith('torch')))" > /tmp/build/requirements.txt \
    && pip install --no-cache-dir -r /tmp/build/requirements.txt

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
