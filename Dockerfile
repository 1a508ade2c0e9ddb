# The Tug image the fleet units run (`--tug-image`, default tug:0.1.0):
#   docker build -t tug:0.1.0 .   then   docker save tug:0.1.0 | ssh node docker load
# Node 26 runs the TypeScript directly (type stripping), so there is no build
# step. Not built in this project's CI: its machines have no Docker engine.
FROM node:26-bookworm-slim
WORKDIR /opt/tug
COPY package.json package-lock.json ./
# The `node` devDependency exists only to bring Node 26 to machines that ship Node 20; the image has it.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY cli ./cli
COPY common ./common
COPY router ./router
COPY registry-proxy ./registry-proxy
COPY deployer ./deployer
COPY units ./units
ENTRYPOINT ["node", "/opt/tug/bin/tug.ts"]
