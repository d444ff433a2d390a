# One image for every nnq process (api, workers, migrate, flower); compose picks the target.
#   cpu    python:3.11-slim + Debian's Fashion-MNIST files + nnq
#   gpu    cpu + CuPy with the CUDA libraries from PyPI (the driver comes from the host)
#   flower cpu + the deploy extra (Celery Flower)
FROM python:3.11-slim AS cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NNQ_DATA_DIR=/usr/share/datasets/fashion-mnist
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY nncore nncore
COPY nnq nnq
COPY service service
COPY workers workers
COPY migrations migrations
RUN pip install . && useradd --create-home --uid 1000 nnq
USER nnq
EXPOSE 8000
CMD ["gunicorn", "-c", "python:service.gunicorn_conf", "service:create_app()", \
     "--bind", "0.0.0.0:8000", "--timeout", "120"]

FROM cpu AS gpu
ARG CUPY_PACKAGE="cupy-cuda12x[ctk]>=14,<15"
USER root
RUN pip install ".[gpu]" "${CUPY_PACKAGE}"
USER nnq

FROM cpu AS flower
USER root
RUN pip install ".[deploy]"
USER nnq
EXPOSE 5555
