FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
# Workspace manifests, so npm ci links the packages (their sources come with COPY . . below).
COPY packages/stripe-emulator/package.json packages/stripe-emulator/
COPY packages/money/package.json packages/money/
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV NODE_ENV=production
EXPOSE 3000 12111
CMD ["npm", "start"]
