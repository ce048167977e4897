"""The embedded local stack: moto server, the real ASL, in-process Lambdas, a CloudFront
emulator running the real edge handlers, demo origins and a traffic generator."""
